"""Windmill-style flows: the OpenFlow model (`parse_flow`) and the engine that runs flow jobs."""

from __future__ import annotations

from gateway.flows.model import Flow, FlowModule, parse_flow

__all__ = ["Flow", "FlowModule", "parse_flow"]

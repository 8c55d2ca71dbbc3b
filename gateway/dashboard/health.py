"""A trigger's health at a glance: one colour and a line saying why, from its row alone.

grey    disabled
red     an error reported by its listener, or enabled but held by no live instance (nobody holds
        it for longer than the claim interval, or its holder stopped pinging)
yellow  connecting, suspended (jobs are parked), or waiting for its first claim
green   held by a live instance that reports no error (or, for HTTP and email, enabled: every
        instance serves those, there is no lease)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from gateway.listeners.lease import CONNECTING
from gateway.store import Row

Colour = Literal["green", "yellow", "red", "grey"]


@dataclass(frozen=True, slots=True)
class LeaseTimings:
    """The lease settings a trigger's row is judged by."""

    claim_interval_s: float
    stale_after_s: float


@dataclass(frozen=True, slots=True)
class TriggerHealth:
    """How a trigger is doing: its colour, a one-word state and a sentence for people."""

    colour: Colour
    state: str
    detail: str


def trigger_health(row: Row, leased: bool, now: datetime, timings: LeaseTimings) -> TriggerHealth:
    """The health of the trigger `row` (a `list_<kind>_triggers` row) at `now`."""
    mode = row["mode"]
    if mode == "disabled":
        return TriggerHealth("grey", "disabled", "disabled: its source is not consumed")
    suspended = TriggerHealth(
        "yellow", "suspended", "suspended: events are consumed, their jobs are parked"
    )
    if not leased:
        return suspended if mode == "suspended" else TriggerHealth("green", "healthy", "served")
    holder = row["server_id"]
    ping = row["last_server_ping"]
    ping_age = (now - ping).total_seconds() if ping is not None else None
    if holder is None or ping_age is None:
        waited = (now - row["edited_at"]).total_seconds()
        if waited < timings.claim_interval_s:
            return TriggerHealth("yellow", "waiting", "waiting for an instance to claim it")
        return TriggerHealth("red", "unheld", "no instance holds it")
    if ping_age > timings.stale_after_s:
        return TriggerHealth("red", "unheld", f"{holder} stopped pinging it {ping_age:.0f} s ago")
    error = row["error"]
    if error == CONNECTING:
        return TriggerHealth("yellow", "connecting", f"{holder} is connecting to its source")
    if error:
        return TriggerHealth("red", "error", error)
    return suspended if mode == "suspended" else TriggerHealth("green", "healthy", "listening")

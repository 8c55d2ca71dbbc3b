"""The Starlette application every gateway instance serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.routing import Mount

from gateway.http_routes import health
from gateway.http_routes.api import build_api

if TYPE_CHECKING:
    from gateway.runtime import Gateway


def create_app(gateway: Gateway) -> Starlette:
    """The ASGI app of `gateway`: health, and the management API under `/api`."""
    app = Starlette(routes=[*health.routes, Mount("/api", app=build_api(gateway))])
    app.state.gateway = gateway
    return app

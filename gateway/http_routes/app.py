"""The Starlette application every gateway instance serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette

from gateway.http_routes import health

if TYPE_CHECKING:
    from gateway.runtime import Gateway


def create_app(gateway: Gateway) -> Starlette:
    """The ASGI app of `gateway`: health now; the API and routes mount here."""
    app = Starlette(routes=[*health.routes])
    app.state.gateway = gateway
    return app

"""The Starlette application every gateway instance serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount

from gateway.dashboard import build_dashboard
from gateway.http_routes import health
from gateway.http_routes.api import build_api
from gateway.http_routes.rate_limits import route_rate_limiter
from gateway.http_routes.routes import RouteEndpoint, RouteOptions
from gateway.http_routes.url_guard import NulInUrlGuard
from gateway.listeners import gcp_push

if TYPE_CHECKING:
    from gateway.runtime import Gateway


def create_app(gateway: Gateway) -> Starlette:
    """The ASGI app of `gateway`: health, user routes under `/api/r`, the API under `/api`."""
    settings = gateway.settings
    user_routes = RouteEndpoint(
        gateway.store,
        RouteOptions(
            max_body_bytes=settings.http_route_max_body_bytes,
            sync_timeout_s=settings.http_route_sync_timeout_s,
            signature_tolerance_s=settings.http_route_signature_tolerance_s,
            version_check_interval_s=settings.http_route_version_check_s,
            auth_cache_s=settings.http_route_auth_cache_s,
            sse_ping_interval_s=settings.http_route_sse_ping_s,
            public_base_url=settings.public_base_url,
            static_root=settings.static_root,
        ),
        route_rate_limiter(settings, gateway.metrics),
    )
    # `/api/r` first: the API's mount would answer those paths too.
    app = Starlette(
        routes=[
            *health.routes,
            *gcp_push.routes(gateway),
            Mount("/api/r", app=user_routes),
            Mount("/api", app=build_api(gateway)),
            Mount("/ui", app=build_dashboard(gateway)),
        ],
        middleware=[Middleware(NulInUrlGuard)],
    )
    app.state.gateway = gateway
    return app

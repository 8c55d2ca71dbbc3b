"""The ASGI application every gateway instance serves.

User routes (`/api/r/...`) go straight to their endpoint: webhook callers are the hot path, and
the Starlette stack in front of the rest (error pages, exception handlers, the path router) would
add its cost to every request while the endpoint answers every error itself. Everything else is
the Starlette app: health, the API, the dashboard, the Pub/Sub push endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from gateway.dashboard import build_dashboard
from gateway.http_routes import health
from gateway.http_routes.api import build_api
from gateway.http_routes.rate_limits import route_rate_limiter
from gateway.http_routes.routes import RouteEndpoint, RouteOptions
from gateway.http_routes.url_guard import USER_ROUTES, NulInUrlGuard, refuse_nul
from gateway.listeners import gcp_push

if TYPE_CHECKING:
    from gateway.runtime import Gateway


class GatewayApp(Starlette):
    """The Starlette app, but for `/api/r/...`: those go straight to the user routes' endpoint,
    as mounted at `/api/r`."""

    def __init__(self, user_routes: RouteEndpoint, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user_routes = user_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one connection or lifespan."""
        if scope["type"] != "http" or not scope["path"].startswith(USER_ROUTES):
            await super().__call__(scope, receive, send)
        elif not await refuse_nul(scope, receive, send):
            scope["root_path"] = scope.get("root_path", "") + USER_ROUTES.rstrip("/")
            await self.user_routes(scope, receive, send)


def create_app(gateway: Gateway) -> GatewayApp:
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
    # `/api/r` first: the API's mount would answer those paths too (`/api/r` without a route).
    app = GatewayApp(
        user_routes,
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

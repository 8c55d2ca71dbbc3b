"""Refusing a URL that holds a NUL character (`%00`) before any endpoint reads it.

No path, name or value of the gateway holds a NUL, and PostgreSQL can neither store nor compare
text that does: a path or query parameter carrying one would fail deep inside a query as a 500.
The guard answers 400 at once, in the error format of the part of the app that was asked.
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.http_routes.api.errors import error_response
from gateway.http_routes.routes.errors import RequestRefused
from gateway.http_routes.routes.responses import refusal

REASON: Final = "the URL holds a NUL character (%00), which no path or parameter may hold"
USER_ROUTES: Final = "/api/r/"


class NulInUrlGuard:
    """ASGI middleware: 400 for an HTTP request whose path or query string holds a NUL."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 400 for a URL with a NUL, else pass the request on unchanged."""
        if not (scope["type"] == "http" and await refuse_nul(scope, receive, send)):
            await self.app(scope, receive, send)


async def refuse_nul(scope: Scope, receive: Receive, send: Send) -> bool:
    """Answer 400 when the request's URL holds a NUL; whether it did."""
    # The server has decoded the path; the query string is still percent-encoded.
    path: str = scope["path"]
    if "\x00" not in path and b"%00" not in scope.get("query_string", b""):
        return False
    response = (
        refusal(RequestRefused(400, REASON))
        if path.startswith(USER_ROUTES)
        else error_response(400, REASON, field="url")
    )
    await response(scope, receive, send)
    return True

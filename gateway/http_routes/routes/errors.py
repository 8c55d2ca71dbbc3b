"""Why a request to `/api/r/...` is refused: one exception, answered as `{"error": reason}`.

RequestRefused          status, reason and extra headers of the answer
 └── RouteMisconfigured the route's own configuration is unusable (500): a missing or
                        malformed authentication resource, an unknown signature provider
"""

from __future__ import annotations

from collections.abc import Mapping


class RequestRefused(Exception):
    """The request gets `status` with `{"error": reason}`; the reason never holds a secret."""

    def __init__(self, status: int, reason: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = dict(headers or {})


class RouteMisconfigured(RequestRefused):
    """The route cannot serve any request until its trigger or resource is fixed."""

    def __init__(self, reason: str) -> None:
        super().__init__(500, reason)

"""CORS of route answers: which origins a route answers to, and its preflights.

A route's `allowed_origins` decides `Access-Control-Allow-Origin`:

* none configured (or `["*"]`): `*`, whatever the origin;
* a list of origins: the request's `Origin` echoed when it is in the list (with `Vary: Origin`,
  so that caches keep one answer per origin), no `Access-Control-Allow-Origin` at all otherwise;
  a preflight from an origin not in the list is a 403 saying so.

Static websites answer every origin. Headers the job set itself (a sync route's
`windmill_headers`) are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from starlette.responses import Response

from gateway.http_routes.routes.errors import RequestRefused

ANY_ORIGIN: Final = "*"
ALL_METHODS: Final = "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS"
DEFAULT_ALLOWED_HEADERS: Final = "content-type, authorization"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_ALLOW_ORIGIN: Final = b"access-control-allow-origin"
_ALLOW_ANY_ORIGIN: Final = (_ALLOW_ORIGIN, ANY_ORIGIN.encode())
_ALLOW_METHODS: Final = (b"access-control-allow-methods", ALL_METHODS.encode())
_ALLOW_HEADERS: Final = (b"access-control-allow-headers", DEFAULT_ALLOWED_HEADERS.encode())


def normalized_origin(text: str) -> str:
    """`scheme://host[:port]` in lowercase, without a default port; ValueError saying what is
    wrong with anything else (a path, a query, credentials, a missing host)."""
    value = text.strip().lower().rstrip("/")
    if value == ANY_ORIGIN:
        return value
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError(f"{text!r} is not an origin: write scheme://host[:port]") from None
    if not parts.scheme or not parts.hostname or "@" in parts.netloc:
        raise ValueError(f"{text!r} is not an origin: write scheme://host[:port]")
    if parts.path or parts.query or parts.fragment:
        raise ValueError(f"{text!r} is not an origin: it has a path, query or fragment")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or port == _DEFAULT_PORTS.get(parts.scheme):
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def normalized_origins(origins: Iterable[str]) -> list[str] | None:
    """The origins of a route as stored: normalized, without duplicates; None for none (or an
    empty list), which answers every origin. ValueError for an invalid one, or `*` among
    others."""
    values = list(dict.fromkeys(normalized_origin(origin) for origin in origins))
    if ANY_ORIGIN in values and len(values) > 1:
        raise ValueError("'*' allows every origin: give it alone, or list the origins")
    return values or None


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """The origins a route answers to; `origins` None means every origin."""

    origins: frozenset[str] | None = None

    @classmethod
    def of(cls, allowed: Iterable[str] | None) -> CorsPolicy:
        """The policy of a stored `allowed_origins` value (None, `[]` and `["*"]`: any)."""
        origins = frozenset(origin.strip().lower().rstrip("/") for origin in allowed or ())
        if not origins or ANY_ORIGIN in origins:
            return cls()
        return cls(origins)

    def allowed_origin(self, origin: str | None) -> str | None:
        """The `Access-Control-Allow-Origin` value for a request from `origin`, if any."""
        if self.origins is None:
            return ANY_ORIGIN
        if origin is not None and origin.lower() in self.origins:
            return origin
        return None

    def apply(self, response: Response, origin: str | None) -> Response:
        """`response` with the CORS headers it does not set already."""
        allowed = self.allowed_origin(origin)
        # Every answer passes here: the raw header list (lowercase names) is the cheap way.
        raw = response.raw_headers
        present = {name for name, _ in raw}
        if allowed is not None and _ALLOW_ORIGIN not in present:
            raw.append(
                _ALLOW_ANY_ORIGIN
                if allowed == ANY_ORIGIN
                else (_ALLOW_ORIGIN, allowed.encode("latin-1"))
            )
        if _ALLOW_METHODS[0] not in present:
            raw.append(_ALLOW_METHODS)
        if _ALLOW_HEADERS[0] not in present:
            raw.append(_ALLOW_HEADERS)
        if self.origins is not None:
            headers = response.headers
            vary = headers.get("vary")
            if vary is None:
                headers["vary"] = "Origin"
            elif "origin" not in (part.strip().lower() for part in vary.split(",")):
                headers["vary"] = f"{vary}, Origin"
        return response

    def preflight(self, origin: str, requested_headers: str | None) -> Response:
        """The answer to a preflight from `origin`: an empty 200 allowing the headers the
        browser asked for; 403 when the origin is not allowed."""
        if self.allowed_origin(origin) is None:
            raise RequestRefused(403, f"origin {origin} is not allowed by this route's CORS")
        allowed_headers = requested_headers or DEFAULT_ALLOWED_HEADERS
        return Response(status_code=200, headers={"access-control-allow-headers": allowed_headers})


ANY: Final = CorsPolicy()
"""The policy of answers given before a route is known, and of static websites."""

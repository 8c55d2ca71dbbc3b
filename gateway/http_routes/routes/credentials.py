"""The request headers a job may see: those that carried credentials the gateway itself checked
(a token, a password, an API key) are left out of the job's args, where anybody who may read
the job would find them. A route that checks nothing (`none`, `custom_script`, `signature`)
passes every header on, so that its preprocessor can check what it needs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from gateway.http_routes.routes.auth import resource_text

WINDMILL_CREDENTIALS: Final = ("authorization", "cookie")
"""Where a Windmill token travels: a bearer token, or the `token` cookie."""


def credential_headers(method: str, resource: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The headers holding the credentials of authentication `method` (and its resource)."""
    if method == "windmill":
        return WINDMILL_CREDENTIALS
    if method == "basic_http":
        return ("authorization",)
    if method == "api_key" and resource is not None:
        return (resource_text(resource, "api_key_header"),)
    return ()


def without_credentials(headers: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """`headers` (by lowercase name) without the headers `names`."""
    left_out = {name.lower() for name in names}
    if not left_out:
        return dict(headers)
    return {name: value for name, value in headers.items() if name not in left_out}

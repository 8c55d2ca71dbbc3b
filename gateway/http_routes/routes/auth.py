"""Authentication of route requests: `windmill` (a token of the workspace), `api_key` and
`basic_http` (checked against the route's resource). `signature` is in `signatures.py`;
`custom_script` and `none` check nothing here (a custom script's preprocessor does).

Secrets are compared in constant time; a failure's reason never contains one. Token verdicts
and resources are kept a few seconds per instance, so a revoked token or a changed resource takes
effect within that time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from gateway.errors import NotFound
from gateway.http_routes.routes.cache import ExpiringCache
from gateway.http_routes.routes.errors import RequestRefused, RouteMisconfigured
from gateway.http_routes.routes.table import HttpRoute
from gateway.resources import resource_value
from gateway.store import Row, Store, fetch_one
from gateway.token_text import token_hash

BASIC_CHALLENGE: Final = {"WWW-Authenticate": 'Basic realm="Restricted Area"'}
SCOPE_DOMAIN: Final = "http_triggers"


class ResourceReader:
    """The authentication resources of routes, read with `resource_value` and kept `ttl_s`."""

    def __init__(self, store: Store, ttl_s: float = 10.0) -> None:
        self._store = store
        self._cache: ExpiringCache[tuple[str, str], dict[str, Any]] = ExpiringCache(ttl_s)

    async def read(self, route: HttpRoute) -> dict[str, Any]:
        """The route's resource value; RouteMisconfigured when it is missing or not an object."""
        path = route.row["authentication_resource_path"]
        if not path:
            raise RouteMisconfigured(
                f"route {route.trigger} uses {route.authentication_method} authentication "
                "but names no authentication_resource_path"
            )
        key = (route.trigger.workspace_id, str(path))
        value = self._cache.get(key)
        if value is None:
            try:
                stored = await resource_value(self._store, *key)
            except NotFound:
                raise RouteMisconfigured(
                    f"the authentication resource {path!r} of route {route.trigger} does not exist"
                ) from None
            if not isinstance(stored, dict):
                raise RouteMisconfigured(f"the authentication resource {path!r} is not an object")
            value = stored
            self._cache.put(key, value)
        return value


def resource_text(resource: Mapping[str, Any], key: str) -> str:
    """A required string field of an authentication resource."""
    value = resource.get(key)
    if not isinstance(value, str) or not value:
        raise RouteMisconfigured(f"the authentication resource has no {key!r} string")
    return value


def same_secret(given: str | bytes, expected: str | bytes) -> bool:
    """Whether two secrets are equal, compared in constant time."""
    given_bytes = given.encode() if isinstance(given, str) else given
    expected_bytes = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(given_bytes, expected_bytes)


def check_api_key(resource: Mapping[str, Any], headers: Mapping[str, str]) -> None:
    """401 unless the header the resource names carries its secret."""
    given = headers.get(resource_text(resource, "api_key_header"))
    if given is None or not same_secret(given, resource_text(resource, "api_key_secret")):
        raise RequestRefused(401, "Unauthorized")


def check_basic(resource: Mapping[str, Any], headers: Mapping[str, str]) -> None:
    """401 with a Basic challenge unless `Authorization: Basic` carries the resource's user and
    password."""
    scheme, _, encoded = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        raise RequestRefused(401, "Requires basic authentication", BASIC_CHALLENGE)
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise RequestRefused(401, "Malformed basic credentials", BASIC_CHALLENGE) from None
    username, colon, password = decoded.partition(":")
    # Both halves are compared, whichever differs, so the time taken tells nothing.
    user_ok = same_secret(username, resource_text(resource, "username"))
    password_ok = same_secret(password, resource_text(resource, "password"))
    if not (colon and user_ok and password_ok):
        raise RequestRefused(401, "Invalid credentials", BASIC_CHALLENGE)


@dataclass(frozen=True, slots=True)
class _Verdict:
    username: str | None


class WindmillAuth:
    """`windmill` authentication: a live token whose user may read the route's trigger."""

    def __init__(self, store: Store, ttl_s: float = 10.0) -> None:
        self._store = store
        self._verdicts: ExpiringCache[tuple[bytes, str, str], _Verdict] = ExpiringCache(ttl_s)

    async def caller(
        self, route: HttpRoute, headers: Mapping[str, str], cookies: Mapping[str, str]
    ) -> str:
        """The username of the caller; 401 without a token or with one that may not call."""
        scheme, _, value = headers.get("authorization", "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else cookies.get("token", "")
        if not token:
            raise RequestRefused(401, "Requires authentication")
        trigger = route.trigger
        key = (hashlib.sha256(token.encode()).digest(), trigger.workspace_id, trigger.path)
        verdict = self._verdicts.get(key)
        if verdict is None:
            row = await fetch_one(
                self._store,
                "http_routes_token_user",
                token_hash=token_hash(token),
                workspace_id=key[1],
            )
            verdict = _Verdict(allowed_user(row, trigger.workspace_id, trigger.path))
            self._verdicts.put(key, verdict)
        if verdict.username is None:
            raise RequestRefused(401, "Unauthorized")
        return verdict.username


def allowed_user(row: Row | None, workspace_id: str, trigger_path: str) -> str | None:
    """The user a token row acts as, if it may read the trigger at `trigger_path`."""
    if row is None or not str(row["owner"] or "").startswith("u/"):
        return None
    if row["token_workspace_id"] not in (None, workspace_id):
        return None
    username = str(row["owner"]).removeprefix("u/")
    member = row["username"] is not None
    job_token = row["job"] is not None and row["token_workspace_id"] == workspace_id
    if not (member or row["super_admin"] or job_token):
        return None
    scopes: Sequence[str] | None = row["scopes"]
    if scopes is not None and not any(_grants_read(scope, trigger_path) for scope in scopes):
        return None
    # Windmill's row-level rule without groups: `u/<user>/...` is that user's, `f/...` everyone's.
    visible = (
        bool(row["is_admin"])
        or bool(row["super_admin"])
        or not trigger_path.startswith("u/")
        or trigger_path.startswith(f"u/{username}/")
    )
    return username if visible else None


def _grants_read(scope: str, trigger_path: str) -> bool:
    """Whether one token scope allows `http_triggers:read:<trigger_path>` (`write` implies
    `read`; a resource ending in `*` covers the paths it prefixes)."""
    if scope == "*":
        return True
    domain, _, rest = scope.partition(":")
    action, _, resource = rest.partition(":")
    if domain not in (SCOPE_DOMAIN, "*") or action not in ("read", "write", "*"):
        return False
    if not resource:
        return True
    return trigger_path == resource or (
        resource.endswith("*") and trigger_path.startswith(resource[:-1])
    )

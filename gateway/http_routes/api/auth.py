"""Who is calling: the bearer token, looked up in `token`, resolved to a user of the workspace.

A token names its owner (`u/<username>`) and email, optionally one workspace (NULL: any workspace
where the owner is a user, or every workspace for a super admin) and its scopes (NULL: all).
A job's token (label `ephemeral-script`, `job` set) acts as the user the job runs as, even when
that user has no `usr` row, and only while its job runs. Tokens are looked up by the SHA-256 of
their text (`gateway.token_text`). A token for another workspace gets 404, exactly as a
workspace that does not exist, so it learns nothing about it.

Scopes read `<domain>:<action>[:<resource>[,<resource>...]]` (`kafka_triggers:write:f/ops/*`,
`jobs:run:scripts:f/ops/etl`, `jobs:read`, `*`); `write` grants `read`, and a resource ending in
`*` grants every path it prefixes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final
from uuid import UUID

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import Forbidden, NotFound
from gateway.http_routes.api.context import store_of
from gateway.http_routes.rate_limits import admit_api_token
from gateway.store import Row, Transaction
from gateway.store.values import utc_now
from gateway.token_text import token_hash
from gateway.workspaces import Identity

TOUCH_EVERY: Final = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Token:
    """A live API token."""

    username: str
    email: str
    workspace_id: str | None
    super_admin: bool
    scopes: tuple[str, ...] | None
    job: UUID | None

    @property
    def identity(self) -> Identity:
        """The user the token acts as."""
        return Identity(self.username, self.email)

    def require_scope(self, domain: str, action: str, path: str | None = None) -> None:
        """Forbidden unless the token's scopes allow `action` on `domain` (and `path`)."""
        if not scope_allows(self.scopes, domain, action, path):
            target = f"{domain}:{action}" + (f":{path}" if path else "")
            raise Forbidden(f"the token's scopes do not allow {target}")


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request acting in one workspace, as one of its users."""

    token: Token
    workspace_id: str
    username: str
    email: str
    is_admin: bool
    is_operator: bool

    @property
    def identity(self) -> Identity:
        """The user the request acts as."""
        return Identity(self.username, self.email)

    def require_scope(self, domain: str, action: str, path: str | None = None) -> None:
        """Forbidden unless the token's scopes allow `action` on `domain` (and `path`)."""
        self.token.require_scope(domain, action, path)


def scope_allows(scopes: Sequence[str] | None, domain: str, action: str, path: str | None) -> bool:
    """Whether `scopes` (None: unrestricted) grant `action` on `domain`, for `path` if given."""
    if scopes is None:
        return True
    return any(_grants(scope, domain, action, path) for scope in scopes)


def _grants(scope: str, domain: str, action: str, path: str | None) -> bool:
    if scope == "*":
        return True
    parts = scope.split(":", 2)
    if len(parts) < 2 or parts[0] not in (domain, "*"):
        return False
    if parts[1] not in (action, "*") and not (parts[1] == "write" and action == "read"):
        return False
    if len(parts) == 2:
        return True
    if path is None:
        return False
    return any(
        path == resource or (resource.endswith("*") and path.startswith(resource[:-1]))
        for resource in parts[2].split(",")
    )


def bearer_token(request: Request) -> str:
    """The token of the request: `Authorization: Bearer <token>`, or `?token=` (webhooks)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return admit_api_token(request, value.strip())
    if token := request.query_params.get("token"):
        return admit_api_token(request, token)
    raise HTTPException(
        401, "missing token: send Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"}
    )


async def load_token(tx: Transaction, text: str) -> Token:
    """The live token `text`, its use recorded at most once a minute; 401 when unknown."""
    hashed = token_hash(text)
    row = await tx.fetch_one("api_get_token", token_hash=hashed)
    owner = (row or {}).get("owner") or ""
    if row is None or not owner.startswith("u/") or not row["email"]:
        raise HTTPException(401, "invalid or expired token", {"WWW-Authenticate": "Bearer"})
    if row["last_used_at"] < utc_now() - TOUCH_EVERY:
        await tx.execute("api_touch_token", token_hash=hashed)
    return Token(
        username=owner.removeprefix("u/"),
        email=row["email"],
        workspace_id=row["workspace_id"],
        super_admin=bool(row["super_admin"]),
        scopes=tuple(row["scopes"]) if row["scopes"] is not None else None,
        job=row["job"],
    )


async def authenticate(request: Request) -> Token:
    """The token of a request that acts outside any one workspace."""
    text = bearer_token(request)
    async with store_of(request).transaction() as tx:
        return await load_token(tx, text)


async def workspace_caller(request: Request) -> Caller:
    """The caller of a `/w/{workspace}/...` request, or NotFound when it cannot see it."""
    text = bearer_token(request)
    workspace_id = request.path_params["workspace"]
    async with store_of(request).transaction() as tx:
        token = await load_token(tx, text)
        user = await _member(tx, token, workspace_id)
    if user is not None:
        return Caller(
            token,
            workspace_id,
            user["username"],
            user["email"],
            is_admin=bool(user["is_admin"]) or token.super_admin,
            is_operator=bool(user["operator"]),
        )
    if token.super_admin:
        return Caller(token, workspace_id, token.username, token.email, True, False)
    if token.job is not None and token.workspace_id == workspace_id:
        return Caller(token, workspace_id, token.username, token.email, False, False)
    raise NotFound(f"workspace {workspace_id!r} not found")


async def _member(tx: Transaction, token: Token, workspace_id: str) -> Row | None:
    if token.workspace_id not in (None, workspace_id):
        raise NotFound(f"workspace {workspace_id!r} not found")
    workspace = await tx.fetch_one("get_workspace", id=workspace_id)
    if workspace is None or workspace["deleted"]:
        raise NotFound(f"workspace {workspace_id!r} not found")
    user = await tx.fetch_one("get_user", workspace_id=workspace_id, username=token.username)
    return user if user is not None and not user["disabled"] else None


WorkspaceEndpoint = Callable[[Request, Caller], Awaitable[Response]]
GlobalEndpoint = Callable[[Request, Token], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def in_workspace(endpoint: WorkspaceEndpoint) -> Endpoint:
    """An endpoint under `/w/{workspace}`, called with the resolved caller."""

    async def authenticated(request: Request) -> Response:
        return await endpoint(request, await workspace_caller(request))

    authenticated.__name__ = endpoint.__name__
    authenticated.__doc__ = endpoint.__doc__
    return authenticated


def signed_in(endpoint: GlobalEndpoint) -> Endpoint:
    """An endpoint outside any workspace, called with the caller's token."""

    async def authenticated(request: Request) -> Response:
        return await endpoint(request, await authenticate(request))

    authenticated.__name__ = endpoint.__name__
    authenticated.__doc__ = endpoint.__doc__
    return authenticated

"""API tokens: `POST /users/tokens/create`, `GET /users/tokens/list`, `DELETE
/users/tokens/delete/{token_prefix}`; and `issue_token`, which the CLI shares.

A token can only narrow what its creator holds: the same workspace (if the creator's token is
bound to one) and a subset of its scopes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.errors import Forbidden, InvalidInput, NotFound
from gateway.http_routes.api import audit
from gateway.http_routes.api.auth import Token, signed_in
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.request_parsing import Page, query_bool, read_model
from gateway.store import Transaction
from gateway.store.values import utc_now
from gateway.token_text import PREFIX_LENGTH, new_token_text, token_hash, token_prefix
from gateway.workspaces import Identity


async def issue_token(
    tx: Transaction,
    owner: Identity,
    workspace_id: str | None,
    *,
    label: str | None = None,
    expiration: datetime | None = None,
    scopes: Sequence[str] | None = None,
) -> str:
    """Store a new token acting as `owner` (hashed) and return its text."""
    text = new_token_text()
    await tx.execute(
        "api_insert_token",
        token_hash=token_hash(text),
        token_prefix=token_prefix(text),
        label=label,
        expiration=expiration,
        workspace_id=workspace_id,
        owner=owner.permissioned_as,
        email=owner.email,
        super_admin=False,
        scopes=list(scopes) if scopes is not None else None,
    )
    return text


class NewToken(BaseModel):
    """The body of `POST /users/tokens/create`."""

    model_config = ConfigDict(extra="ignore")

    label: str | None = Field(default=None, max_length=255)
    expiration: datetime | None = None
    scopes: list[str] | None = None
    workspace_id: str | None = None
    read_only: bool = False


async def create_token(request: Request, token: Token) -> Response:
    """A new token for the caller; 201 with the token as text."""
    body = await read_model(request, NewToken)
    if body.read_only:
        raise InvalidInput("read_only", "read-only tokens are not supported; use scopes")
    if body.expiration is not None and body.expiration <= utc_now():
        raise InvalidInput("expiration", "must be in the future")
    workspace_id = body.workspace_id or token.workspace_id
    if token.workspace_id is not None and workspace_id != token.workspace_id:
        raise Forbidden(f"this token is limited to workspace {token.workspace_id!r}")
    scopes = _narrowed_scopes(token, body.scopes)
    async with store_of(request).transaction() as tx:
        if workspace_id is not None and not await _may_enter(tx, token, workspace_id):
            raise NotFound(f"workspace {workspace_id!r} not found")
        text = await issue_token(
            tx,
            token.identity,
            workspace_id,
            label=body.label,
            expiration=body.expiration,
            scopes=scopes,
        )
        await audit.record(
            tx,
            token.identity,
            workspace_id or audit.GLOBAL_WORKSPACE,
            "users.token.create",
            token_prefix(text),
            action="create",
            parameters={"label": body.label} if body.label else None,
        )
    return PlainTextResponse(text, 201)


async def _may_enter(tx: Transaction, token: Token, workspace_id: str) -> bool:
    workspace = await tx.fetch_one("get_workspace", id=workspace_id)
    if workspace is None or workspace["deleted"]:
        return False
    user = await tx.fetch_one("get_user", workspace_id=workspace_id, username=token.username)
    return token.super_admin or (user is not None and not user["disabled"])


def _narrowed_scopes(token: Token, wanted: list[str] | None) -> Sequence[str] | None:
    if token.scopes is None or "*" in token.scopes:
        return wanted
    if wanted is None:
        return token.scopes
    extra = sorted(set(wanted) - set(token.scopes))
    if extra:
        raise Forbidden(f"a token cannot grant scopes its creator lacks: {', '.join(extra)}")
    return wanted


async def list_tokens(request: Request, token: Token) -> Response:
    """The caller's tokens, by their clear prefix only."""
    page = Page.of(request)
    async with store_of(request).transaction() as tx:
        rows = await tx.fetch_all(
            "api_list_tokens",
            email=token.email,
            exclude_ephemeral=bool(query_bool(request, "exclude_ephemeral")),
            limit=page.per_page,
            offset=page.offset,
        )
    listed: list[dict[str, Any]] = []
    for row in rows:
        item = {**row, "read_only": False}
        for moment in ("expiration", "created_at", "last_used_at"):
            item[moment] = row[moment].isoformat() if row[moment] else None
        listed.append({k: v for k, v in item.items() if v is not None})
    return JSONResponse(listed)


async def delete_token(request: Request, token: Token) -> Response:
    """Revoke the caller's tokens with this prefix (or this whole token)."""
    given = request.path_params["token_prefix"]
    if len(given) < PREFIX_LENGTH:
        raise InvalidInput("token_prefix", f"give at least {PREFIX_LENGTH} characters")
    prefix = token_prefix(given)
    async with store_of(request).transaction() as tx:
        deleted = await tx.execute(
            "api_delete_tokens_by_prefix",
            email=token.email,
            prefix=given,
            token_hash=token_hash(given),
        )
        if deleted == 0:
            raise NotFound(f"no token starting with {prefix!r}")
        await audit.record(
            tx,
            token.identity,
            token.workspace_id or audit.GLOBAL_WORKSPACE,
            "users.token.delete",
            prefix,
            action="delete",
        )
    return PlainTextResponse(f"deleted {deleted} token(s) starting with {prefix}")


routes = [
    Route("/users/tokens/create", signed_in(create_token), methods=["POST"]),
    Route("/users/tokens/list", signed_in(list_tokens), methods=["GET"]),
    Route("/users/tokens/delete/{token_prefix}", signed_in(delete_token), methods=["DELETE"]),
]

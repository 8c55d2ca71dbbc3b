"""`POST /workspaces/create` and `GET /workspaces/list`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.errors import Conflict, Forbidden, InvalidInput
from gateway.http_routes.api import audit
from gateway.http_routes.api.auth import Token, signed_in
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.request_parsing import read_model
from gateway.workspaces import Identity, check_workspace_id, ensure_workspace


class NewWorkspace(BaseModel):
    """The body of `POST /workspaces/create`."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str = Field(min_length=1, max_length=50)
    username: str | None = Field(default=None, pattern=r"^[\w.-]{1,50}$")


async def create_workspace(request: Request, token: Token) -> Response:
    """A new workspace with the caller as its admin."""
    if token.workspace_id is not None:
        raise Forbidden("a token bound to one workspace cannot create workspaces")
    body = await read_model(request, NewWorkspace)
    try:
        check_workspace_id(body.id)
    except InvalidInput as exc:
        raise InvalidInput("id", exc.reason) from None
    owner = Identity(body.username or token.username, token.email)
    async with store_of(request).transaction() as tx:
        if not await ensure_workspace(tx, body.id, owner, body.name):
            raise Conflict(f"workspace {body.id!r} exists already")
        await audit.record(tx, owner, body.id, "workspaces.create", body.id, action="create")
    return PlainTextResponse(f"Created workspace {body.id}", 201)


async def list_workspaces(request: Request, token: Token) -> Response:
    """The workspaces the caller belongs to (every one for a super admin)."""
    async with store_of(request).transaction() as tx:
        if token.super_admin:
            rows = await tx.fetch_all("list_workspaces")
        else:
            rows = await tx.fetch_all("api_list_workspaces_of_email", email=token.email)
    if token.workspace_id is not None:
        rows = [row for row in rows if row["id"] == token.workspace_id]
    return JSONResponse([{"id": r["id"], "name": r["name"], "owner": r["owner"]} for r in rows])


routes = [
    Route("/workspaces/create", signed_in(create_workspace), methods=["POST"]),
    Route("/workspaces/list", signed_in(list_workspaces), methods=["GET"]),
]

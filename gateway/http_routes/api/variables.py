"""Variables under `/w/{workspace}/variables/...`: create, update, get, get_value, list, delete,
exists. Secret values leave the gateway only through `get` and `get_value` (each read audited as
`variables.decrypt_secret`), never through `list`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.errors import Conflict, NotFound
from gateway.http_routes.api import audit
from gateway.http_routes.api.auth import Caller, in_workspace
from gateway.http_routes.api.context import secrets_of, store_of
from gateway.http_routes.api.locks import lock_paths
from gateway.http_routes.api.permissions import (
    check_path,
    require_visible,
    require_writable,
    user_prefix,
)
from gateway.http_routes.api.request_parsing import Page, query_bool, query_text, read_model
from gateway.secrets.keeper import SecretKeeper
from gateway.secrets.variables import clear_value, write_variable
from gateway.store import Row, Transaction

DOMAIN = "variables"


class NewVariable(BaseModel):
    """The body of `POST /variables/create`."""

    model_config = ConfigDict(extra="ignore")

    path: str
    value: str = Field(max_length=15000)
    is_secret: bool = False
    description: str = Field(default="", max_length=10000)


class VariableChange(BaseModel):
    """The body of `POST /variables/update/{path}`: only the fields given change."""

    model_config = ConfigDict(extra="ignore")

    path: str | None = None
    value: str | None = Field(default=None, max_length=15000)
    is_secret: bool | None = None
    description: str | None = Field(default=None, max_length=10000)


async def find_variable(tx: Transaction, caller: Caller, path: str) -> Row:
    """The variable at `path`, or NotFound (also when the caller may not see it)."""
    row = await tx.fetch_one("get_variable", workspace_id=caller.workspace_id, path=path)
    if row is None:
        raise NotFound(f"variable not found at path {path!r}")
    require_visible(caller, path, "variable", row["extra_perms"])
    return row


async def variable_value(tx: Transaction, secrets: SecretKeeper, caller: Caller, path: str) -> str:
    """The value of a variable the caller may read; a secret's read is audited."""
    caller.require_scope(DOMAIN, "read", path)
    return await reveal(tx, secrets, caller, await find_variable(tx, caller, path))


async def reveal(tx: Transaction, secrets: SecretKeeper, caller: Caller, row: Row) -> str:
    """The value of a variable row (a secret opened and its read audited)."""
    if row["is_secret"]:
        await audit.record(
            tx,
            caller.identity,
            caller.workspace_id,
            "variables.decrypt_secret",
            row["path"],
            action="execute",
        )
    return await clear_value(tx, secrets, row)


async def create_variable(request: Request, caller: Caller) -> Response:
    """A new variable; 201 with its path."""
    body = await read_model(request, NewVariable)
    path = check_path(body.path)
    caller.require_scope(DOMAIN, "write", path)
    require_writable(caller, path)
    async with store_of(request).transaction() as tx:
        await lock_paths(tx, "variable", caller.workspace_id, path)
        if await tx.fetch_one("get_variable", workspace_id=caller.workspace_id, path=path):
            raise Conflict(f"a variable exists already at path {path!r}")
        await _write(
            tx,
            secrets_of(request),
            caller,
            path,
            value=body.value,
            is_secret=body.is_secret,
            description=body.description,
        )
        await audit.record(
            tx, caller.identity, caller.workspace_id, "variables.create", path, action="create"
        )
    return PlainTextResponse(path, 201)


async def update_variable(request: Request, caller: Caller) -> Response:
    """Change the given fields of a variable, possibly moving it to a new path."""
    path = request.path_params["path"]
    body = await read_model(request, VariableChange)
    new_path = check_path(body.path) if body.path else path
    for target in {path, new_path}:
        caller.require_scope(DOMAIN, "write", target)
    async with store_of(request).transaction() as tx:
        await lock_paths(tx, "variable", caller.workspace_id, path, new_path)
        row = await find_variable(tx, caller, path)
        require_writable(caller, path, row["extra_perms"])
        if new_path != path:
            require_writable(caller, new_path)
            if await tx.fetch_one("get_variable", workspace_id=caller.workspace_id, path=new_path):
                raise Conflict(f"a variable exists already at path {new_path!r}")
            await tx.execute("api_delete_variable", workspace_id=caller.workspace_id, path=path)
        secrets = secrets_of(request)
        await _write(
            tx,
            secrets,
            caller,
            new_path,
            value=await clear_value(tx, secrets, row) if body.value is None else body.value,
            is_secret=row["is_secret"] if body.is_secret is None else body.is_secret,
            description=row["description"] if body.description is None else body.description,
        )
        moved = {"from": path} if new_path != path else None
        await audit.record(
            tx,
            caller.identity,
            caller.workspace_id,
            "variables.update",
            new_path,
            action="update",
            parameters=moved,
        )
    return PlainTextResponse(new_path)


async def _write(
    tx: Transaction,
    secrets: SecretKeeper,
    caller: Caller,
    path: str,
    *,
    value: str,
    is_secret: bool,
    description: str,
) -> None:
    await write_variable(
        tx,
        secrets,
        caller.workspace_id,
        path,
        value=value,
        is_secret=is_secret,
        description=description,
    )


async def get_variable(request: Request, caller: Caller) -> Response:
    """One variable; a secret's value only unless `decrypt_secret=false`."""
    path = request.path_params["path"]
    caller.require_scope(DOMAIN, "read", path)
    decrypt = query_bool(request, "decrypt_secret") is not False
    async with store_of(request).transaction() as tx:
        row = await find_variable(tx, caller, path)
        shown = decrypt or not row["is_secret"]
        value = await reveal(tx, secrets_of(request), caller, row) if shown else None
    return JSONResponse(variable_json(row, value))


async def get_variable_value(request: Request, caller: Caller) -> Response:
    """A variable's value as a JSON string (what `wmill.get_variable` reads)."""
    async with store_of(request).transaction() as tx:
        value = await variable_value(tx, secrets_of(request), caller, request.path_params["path"])
    return JSONResponse(value)


async def list_variables(request: Request, caller: Caller) -> Response:
    """A page of the variables the caller may see; secret values are left out."""
    caller.require_scope(DOMAIN, "read")
    page = Page.of(request)
    async with store_of(request).transaction() as tx:
        rows = await tx.fetch_all(
            "api_list_variables",
            workspace_id=caller.workspace_id,
            path_start=query_text(request, "path_start"),
            is_admin=caller.is_admin,
            user_prefix=user_prefix(caller),
            limit=page.per_page,
            offset=page.offset,
        )
    return JSONResponse([variable_json(row, row["value"]) for row in rows])


def variable_json(row: Row, value: str | None) -> dict[str, Any]:
    """Windmill's variable object; `value` is left out when None."""
    body = {
        "workspace_id": row["workspace_id"],
        "path": row["path"],
        "value": value,
        "is_secret": bool(row["is_secret"]),
        "description": row["description"],
        "extra_perms": row["extra_perms"] or {},
        "account": row.get("account"),
        "is_oauth": bool(row.get("is_oauth")),
        "is_draft": False,
    }
    return {k: v for k, v in body.items() if v is not None}


async def delete_variable(request: Request, caller: Caller) -> Response:
    """Remove a variable."""
    path = request.path_params["path"]
    caller.require_scope(DOMAIN, "write", path)
    async with store_of(request).transaction() as tx:
        row = await find_variable(tx, caller, path)
        require_writable(caller, path, row["extra_perms"])
        await tx.execute("api_delete_variable", workspace_id=caller.workspace_id, path=path)
        await audit.record(
            tx, caller.identity, caller.workspace_id, "variables.delete", path, action="delete"
        )
    return PlainTextResponse(f"variable {path} deleted")


async def exists_variable(request: Request, caller: Caller) -> Response:
    """Whether a variable exists at the path (JSON boolean)."""
    path = request.path_params["path"]
    caller.require_scope(DOMAIN, "read", path)
    async with store_of(request).transaction() as tx:
        row = await tx.fetch_one("get_variable", workspace_id=caller.workspace_id, path=path)
    return JSONResponse(row is not None)


_PREFIX = "/w/{workspace}/variables"
routes = [
    Route(f"{_PREFIX}/create", in_workspace(create_variable), methods=["POST"]),
    Route(f"{_PREFIX}/update/{{path:path}}", in_workspace(update_variable), methods=["POST"]),
    Route(f"{_PREFIX}/get/{{path:path}}", in_workspace(get_variable), methods=["GET"]),
    Route(f"{_PREFIX}/get_value/{{path:path}}", in_workspace(get_variable_value), methods=["GET"]),
    Route(f"{_PREFIX}/list", in_workspace(list_variables), methods=["GET"]),
    Route(f"{_PREFIX}/delete/{{path:path}}", in_workspace(delete_variable), methods=["DELETE"]),
    Route(f"{_PREFIX}/exists/{{path:path}}", in_workspace(exists_variable), methods=["GET"]),
]

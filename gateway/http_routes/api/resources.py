"""Resources under `/w/{workspace}/resources/...`: create, update, update_value, get, get_value,
get_value_interpolated, list, delete, exists.

`wmill.get_state`/`set_state` use these with the job's state path: the state is a resource of
type `state`, created by the first `set_state`.
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
from gateway.http_routes.api.interpolation import interpolate
from gateway.http_routes.api.locks import lock_paths
from gateway.http_routes.api.permissions import (
    check_path,
    require_visible,
    require_writable,
    user_prefix,
)
from gateway.http_routes.api.request_parsing import Page, query_bool, query_text, read_model
from gateway.store import Json, Row, Transaction

DOMAIN = "resources"


class NewResource(BaseModel):
    """The body of `POST /resources/create`."""

    model_config = ConfigDict(extra="ignore")

    path: str
    value: Any = None
    resource_type: str = Field(min_length=1, max_length=50)
    description: str | None = None


class ResourceChange(BaseModel):
    """The body of `POST /resources/update/{path}`: only the fields given change."""

    model_config = ConfigDict(extra="ignore")

    path: str | None = None
    value: Any = None
    resource_type: str | None = Field(default=None, min_length=1, max_length=50)
    description: str | None = None


class ValueChange(BaseModel):
    """The body of `POST /resources/update_value/{path}`."""

    model_config = ConfigDict(extra="ignore")

    value: Any = None


async def find_resource(tx: Transaction, caller: Caller, path: str) -> Row:
    """The resource at `path`, or NotFound (also when the caller may not see it)."""
    row = await tx.fetch_one("get_resource", workspace_id=caller.workspace_id, path=path)
    if row is None:
        raise NotFound(f"resource not found at path {path!r}")
    require_visible(caller, path, "resource", row["extra_perms"])
    return row


async def find_writable_resource(tx: Transaction, caller: Caller, path: str) -> Row:
    """The resource at `path` if the caller may change it (its own, or granted to it)."""
    caller.require_scope(DOMAIN, "write", path)
    row = await find_resource(tx, caller, path)
    require_writable(caller, path, row["extra_perms"])
    return row


async def _write(
    tx: Transaction, caller: Caller, path: str, *, value: Any, resource_type: str, description: str
) -> None:
    await tx.execute(
        "upsert_resource",
        workspace_id=caller.workspace_id,
        path=path,
        value=Json(value),
        description=description,
        resource_type=resource_type,
        created_by=caller.username,
    )


def _writable_path(caller: Caller, path: str) -> str:
    caller.require_scope(DOMAIN, "write", path)
    require_writable(caller, path)
    return path


async def create_resource(request: Request, caller: Caller) -> Response:
    """A new resource (`update_if_exists=true` replaces an existing one); 201 with its path."""
    body = await read_model(request, NewResource)
    path = _writable_path(caller, check_path(body.path))
    async with store_of(request).transaction() as tx:
        await lock_paths(tx, "resource", caller.workspace_id, path)
        existing = await tx.fetch_one("get_resource", workspace_id=caller.workspace_id, path=path)
        if existing is not None and not query_bool(request, "update_if_exists"):
            raise Conflict(f"a resource exists already at path {path!r}")
        await _write(
            tx,
            caller,
            path,
            value=body.value,
            resource_type=body.resource_type,
            description=body.description or "",
        )
        action: audit.ActionKind = "update" if existing else "create"
        await audit.record(
            tx, caller.identity, caller.workspace_id, f"resources.{action}", path, action=action
        )
    return PlainTextResponse(path, 201)


async def update_resource(request: Request, caller: Caller) -> Response:
    """Change the given fields of a resource, possibly moving it to a new path."""
    path = request.path_params["path"]
    body = await read_model(request, ResourceChange)
    new_path = path
    if body.path and body.path != path:
        new_path = _writable_path(caller, check_path(body.path))
    async with store_of(request).transaction() as tx:
        await lock_paths(tx, "resource", caller.workspace_id, path, new_path)
        row = await find_writable_resource(tx, caller, path)
        if new_path != path:
            if await tx.fetch_one("get_resource", workspace_id=caller.workspace_id, path=new_path):
                raise Conflict(f"a resource exists already at path {new_path!r}")
            await tx.execute("api_delete_resource", workspace_id=caller.workspace_id, path=path)
        await _write(
            tx,
            caller,
            new_path,
            value=body.value if "value" in body.model_fields_set else row["value"],
            resource_type=body.resource_type or row["resource_type"],
            description=row["description"] if body.description is None else body.description,
        )
        moved = {"from": path} if new_path != path else None
        await audit.record(
            tx,
            caller.identity,
            caller.workspace_id,
            "resources.update",
            new_path,
            action="update",
            parameters=moved,
        )
    return PlainTextResponse(new_path)


async def update_resource_value(request: Request, caller: Caller) -> Response:
    """Replace a resource's value (what `wmill.set_resource`/`set_state` send)."""
    path = request.path_params["path"]
    body = await read_model(request, ValueChange)
    async with store_of(request).transaction() as tx:
        await lock_paths(tx, "resource", caller.workspace_id, path)
        row = await find_writable_resource(tx, caller, path)
        await _write(
            tx,
            caller,
            path,
            value=body.value,
            resource_type=row["resource_type"],
            description=row["description"] or "",
        )
        await audit.record(
            tx, caller.identity, caller.workspace_id, "resources.update", path, action="update"
        )
    return PlainTextResponse(path)


async def get_resource(request: Request, caller: Caller) -> Response:
    """One resource, its value as stored (references not resolved)."""
    path = request.path_params["path"]
    caller.require_scope(DOMAIN, "read", path)
    async with store_of(request).transaction() as tx:
        row = await find_resource(tx, caller, path)
    return JSONResponse(resource_json(row))


async def get_resource_value(request: Request, caller: Caller) -> Response:
    """A resource's value as stored."""
    path = request.path_params["path"]
    caller.require_scope(DOMAIN, "read", path)
    async with store_of(request).transaction() as tx:
        row = await find_resource(tx, caller, path)
    return JSONResponse(row["value"])


async def get_resource_value_interpolated(request: Request, caller: Caller) -> Response:
    """A resource's value with `$var:` and `$res:` references resolved."""
    path = request.path_params["path"]
    caller.require_scope(DOMAIN, "read", path)
    async with store_of(request).transaction() as tx:
        row = await find_resource(tx, caller, path)
        value = await interpolate(tx, secrets_of(request), caller, row["value"])
    return JSONResponse(value)


async def list_resources(request: Request, caller: Caller) -> Response:
    """A page of the resources the caller may see (without their values)."""
    caller.require_scope(DOMAIN, "read")
    page = Page.of(request)
    async with store_of(request).transaction() as tx:
        rows = await tx.fetch_all(
            "api_list_resources",
            workspace_id=caller.workspace_id,
            resource_type=query_text(request, "resource_type"),
            path_start=query_text(request, "path_start"),
            is_admin=caller.is_admin,
            user_prefix=user_prefix(caller),
            limit=page.per_page,
            offset=page.offset,
        )
    return JSONResponse([resource_json(row) for row in rows])


def resource_json(row: Row) -> dict[str, Any]:
    """Windmill's resource object; the value only when the row has one."""
    body = {
        "workspace_id": row["workspace_id"],
        "path": row["path"],
        "value": row.get("value"),
        "description": row["description"],
        "resource_type": row["resource_type"],
        "extra_perms": row["extra_perms"] or {},
        "created_by": row["created_by"],
        "edited_at": row["edited_at"].isoformat() if row["edited_at"] else None,
        "is_oauth": False,
        "is_linked": False,
        "is_refreshed": False,
        "is_draft": False,
    }
    return {k: v for k, v in body.items() if v is not None}


async def delete_resource(request: Request, caller: Caller) -> Response:
    """Remove a resource."""
    path = request.path_params["path"]
    async with store_of(request).transaction() as tx:
        await find_writable_resource(tx, caller, path)
        await tx.execute("api_delete_resource", workspace_id=caller.workspace_id, path=path)
        await audit.record(
            tx, caller.identity, caller.workspace_id, "resources.delete", path, action="delete"
        )
    return PlainTextResponse(f"resource {path} deleted")


async def exists_resource(request: Request, caller: Caller) -> Response:
    """Whether a resource exists at the path (JSON boolean)."""
    path = request.path_params["path"]
    caller.require_scope(DOMAIN, "read", path)
    async with store_of(request).transaction() as tx:
        row = await tx.fetch_one("get_resource", workspace_id=caller.workspace_id, path=path)
    return JSONResponse(row is not None)


_PREFIX = "/w/{workspace}/resources"
routes = [
    Route(f"{_PREFIX}/create", in_workspace(create_resource), methods=["POST"]),
    Route(f"{_PREFIX}/update/{{path:path}}", in_workspace(update_resource), methods=["POST"]),
    Route(
        f"{_PREFIX}/update_value/{{path:path}}",
        in_workspace(update_resource_value),
        methods=["POST"],
    ),
    Route(f"{_PREFIX}/get/{{path:path}}", in_workspace(get_resource), methods=["GET"]),
    Route(f"{_PREFIX}/get_value/{{path:path}}", in_workspace(get_resource_value), methods=["GET"]),
    Route(
        f"{_PREFIX}/get_value_interpolated/{{path:path}}",
        in_workspace(get_resource_value_interpolated),
        methods=["GET"],
    ),
    Route(f"{_PREFIX}/list", in_workspace(list_resources), methods=["GET"]),
    Route(f"{_PREFIX}/delete/{{path:path}}", in_workspace(delete_resource), methods=["DELETE"]),
    Route(f"{_PREFIX}/exists/{{path:path}}", in_workspace(exists_resource), methods=["GET"]),
]

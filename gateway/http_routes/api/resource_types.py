"""Resource types under `/w/{workspace}/resources/type/...`: create, get, list."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.errors import Conflict, Forbidden, NotFound
from gateway.http_routes.api import audit
from gateway.http_routes.api.auth import Caller, in_workspace
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.request_parsing import read_model
from gateway.store import Json, Row, fetch_all, fetch_one


class NewResourceType(BaseModel):
    """The body of `POST /resources/type/create`."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(pattern=r"^[\w-]{1,50}$")
    schema_: Any = Field(default=None, alias="schema")
    description: str | None = None
    format_extension: str | None = Field(default=None, max_length=20)


async def create_resource_type(request: Request, caller: Caller) -> Response:
    """A new resource type; 201 with its name."""
    caller.require_scope("resources", "write")
    if caller.is_operator and not caller.is_admin:
        raise Forbidden(f"{caller.username} is an operator and cannot create resource types")
    body = await read_model(request, NewResourceType)
    async with store_of(request).transaction() as tx:
        created = await tx.fetch_one(
            "api_insert_resource_type",
            workspace_id=caller.workspace_id,
            name=body.name,
            schema=Json(body.schema_) if body.schema_ is not None else None,
            description=body.description,
            created_by=caller.username,
            format_extension=body.format_extension,
        )
        if created is None:
            raise Conflict(f"a resource type named {body.name!r} exists already")
        await audit.record(
            tx,
            caller.identity,
            caller.workspace_id,
            "resource_types.create",
            body.name,
            action="create",
        )
    return PlainTextResponse(body.name, 201)


async def get_resource_type(request: Request, caller: Caller) -> Response:
    """One resource type."""
    caller.require_scope("resources", "read")
    name = request.path_params["name"]
    row = await fetch_one(
        store_of(request), "api_get_resource_type", workspace_id=caller.workspace_id, name=name
    )
    if row is None:
        raise NotFound(f"resource type {name!r} not found")
    return JSONResponse(resource_type_json(row))


async def list_resource_types(request: Request, caller: Caller) -> Response:
    """Every resource type of the workspace."""
    caller.require_scope("resources", "read")
    rows = await fetch_all(
        store_of(request), "api_list_resource_types", workspace_id=caller.workspace_id
    )
    return JSONResponse([resource_type_json(row) for row in rows])


def resource_type_json(row: Row) -> dict[str, Any]:
    """Windmill's resource type object."""
    body = {**row, "edited_at": row["edited_at"].isoformat() if row["edited_at"] else None}
    return {k: v for k, v in body.items() if v is not None}


_PREFIX = "/w/{workspace}/resources/type"
routes = [
    Route(f"{_PREFIX}/create", in_workspace(create_resource_type), methods=["POST"]),
    Route(f"{_PREFIX}/get/{{name}}", in_workspace(get_resource_type), methods=["GET"]),
    Route(f"{_PREFIX}/list", in_workspace(list_resource_types), methods=["GET"]),
]

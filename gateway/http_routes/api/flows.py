"""Flows under `/w/{workspace}/flows/...`: create, update, get, list, exists, archive, delete,
and the version history (`history/p/{path}`, `get/v/{version}`, `get_latest_version/{path}`).

Saving is `gateway.flow_versions.save_flow`: the value is checked by the flow engine's parser
(400 naming the field), every save that changes something writes a version, and saving the
latest definition again writes nothing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.errors import InvalidInput, NotFound
from gateway.flow_versions import FlowDraft, save_flow
from gateway.http_routes.api import audit
from gateway.http_routes.api.auth import Caller, in_workspace
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.locks import lock_paths
from gateway.http_routes.api.permissions import (
    check_path,
    require_visible,
    require_writable,
    user_prefix,
)
from gateway.http_routes.api.request_parsing import Page, query_bool, query_text, read_model
from gateway.store import Row, Transaction

DOMAIN = "flows"


class FlowBody(BaseModel):
    """The body of `POST /flows/create` and `/flows/update/{path}` (Windmill's OpenFlowWPath;
    fields the gateway does not use are ignored)."""

    model_config = ConfigDict(extra="ignore")

    path: str
    summary: str = Field(default="", max_length=10000)
    description: str = ""
    value: dict[str, Any]
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    tag: str | None = Field(default=None, max_length=50)
    timeout: int | None = Field(default=None, gt=0)
    dedicated_worker: bool | None = None

    def draft(self) -> FlowDraft:
        """What to save."""
        return FlowDraft(
            path=self.path,
            value=self.value,
            summary=self.summary,
            description=self.description,
            schema=self.schema_,
            tag=self.tag,
            timeout=self.timeout,
            dedicated_worker=self.dedicated_worker,
        )


class ArchiveBody(BaseModel):
    """The body of `POST /flows/archive/{path}`."""

    archived: bool = True


async def _save(
    request: Request, caller: Caller, body: FlowBody, path: str, *, must_exist: bool
) -> None:
    check_path(body.path)
    if body.path != path:
        raise InvalidInput("path", "a flow cannot be renamed: create it at the new path instead")
    caller.require_scope(DOMAIN, "write", path)
    async with store_of(request).transaction() as tx:
        await lock_paths(tx, "flow", caller.workspace_id, path)
        await _require_writable_flow(tx, caller, path)
        saved, action = await save_flow(
            tx, caller.workspace_id, body.draft(), caller.username, must_exist=must_exist
        )
        if action != "unchanged":
            kind: audit.ActionKind = "create" if action == "created" else "update"
            await audit.record(
                tx,
                caller.identity,
                caller.workspace_id,
                f"flows.{kind}",
                path,
                action=kind,
                parameters={"version": saved["version_id"]},
            )


async def create_flow(request: Request, caller: Caller) -> Response:
    """Save a new flow; 201 with its path."""
    body = await read_model(request, FlowBody)
    await _save(request, caller, body, body.path, must_exist=False)
    return PlainTextResponse(body.path, 201)


async def update_flow(request: Request, caller: Caller) -> Response:
    """Save a new version of an existing flow; its path."""
    path = request.path_params["path"]
    await _save(request, caller, await read_model(request, FlowBody), path, must_exist=True)
    return PlainTextResponse(path)


async def _visible_flow(tx: Transaction, caller: Caller, path: str) -> Row:
    row = await tx.fetch_one("get_flow", workspace_id=caller.workspace_id, path=path)
    if row is None:
        raise NotFound(f"flow not found at path {path!r}")
    require_visible(caller, path, "flow", row["extra_perms"])
    return row


async def _require_writable_flow(tx: Transaction, caller: Caller, path: str) -> None:
    row = await tx.fetch_one("get_flow", workspace_id=caller.workspace_id, path=path)
    require_writable(caller, path, row["extra_perms"] if row else None)


async def get_flow(request: Request, caller: Caller) -> Response:
    """A flow with its latest definition."""
    path = request.path_params["path"]
    caller.require_scope(DOMAIN, "read", path)
    async with store_of(request).transaction() as tx:
        row = await _visible_flow(tx, caller, path)
    return JSONResponse(flow_json(row))


async def list_flows(request: Request, caller: Caller) -> Response:
    """A page of the flows the caller may see, without their definitions."""
    caller.require_scope(DOMAIN, "read")
    page = Page.of(request)
    async with store_of(request).transaction() as tx:
        rows = await tx.fetch_all(
            "api_list_flows",
            workspace_id=caller.workspace_id,
            show_archived=bool(query_bool(request, "show_archived")),
            path_start=query_text(request, "path_start"),
            path_exact=query_text(request, "path_exact"),
            is_admin=caller.is_admin,
            user_prefix=user_prefix(caller),
            limit=page.per_page,
            offset=page.offset,
        )
    return JSONResponse([flow_json(row) for row in rows])


async def exists_flow(request: Request, caller: Caller) -> Response:
    """Whether a flow exists at the path (JSON boolean)."""
    path = request.path_params["path"]
    caller.require_scope(DOMAIN, "read", path)
    async with store_of(request).transaction() as tx:
        row = await tx.fetch_one("get_flow", workspace_id=caller.workspace_id, path=path)
    return JSONResponse(row is not None)


async def flow_history(request: Request, caller: Caller) -> Response:
    """Every version of a flow, newest first."""
    path = request.path_params["path"]
    caller.require_scope(DOMAIN, "read", path)
    async with store_of(request).transaction() as tx:
        await _visible_flow(tx, caller, path)
        rows = await tx.fetch_all("list_flow_versions", workspace_id=caller.workspace_id, path=path)
    return JSONResponse([_version_json(row) for row in rows])


async def latest_version(request: Request, caller: Caller) -> Response:
    """The latest version of a flow (id, author, time)."""
    path = request.path_params["path"]
    caller.require_scope(DOMAIN, "read", path)
    async with store_of(request).transaction() as tx:
        await _visible_flow(tx, caller, path)
        rows = await tx.fetch_all("list_flow_versions", workspace_id=caller.workspace_id, path=path)
    if not rows:
        raise NotFound(f"flow {path!r} has no version")
    return JSONResponse(_version_json(rows[0]))


async def get_flow_version(request: Request, caller: Caller) -> Response:
    """One version of a flow: its definition then, with the flow's current metadata."""
    caller.require_scope(DOMAIN, "read")
    text = request.path_params["version"]
    try:
        version = int(float(text))
    except ValueError:
        raise InvalidInput("version", f"{text!r} is not a flow version id") from None
    async with store_of(request).transaction() as tx:
        row = await tx.fetch_one("get_flow_version", workspace_id=caller.workspace_id, id=version)
    expected_path = request.path_params.get("path")
    if row is None or (expected_path is not None and row["path"] != expected_path):
        raise NotFound(f"flow version {version} not found")
    require_visible(caller, row["path"], "flow", row["extra_perms"])
    body = flow_json({**row, "edited_by": row["created_by"], "edited_at": row["created_at"]})
    return JSONResponse(body)


async def archive_flow(request: Request, caller: Caller) -> Response:
    """Archive (or, with `{"archived": false}`, unarchive) a flow: an archived flow does not run."""
    path = request.path_params["path"]
    body = await read_model(request, ArchiveBody)
    caller.require_scope(DOMAIN, "write", path)
    async with store_of(request).transaction() as tx:
        await lock_paths(tx, "flow", caller.workspace_id, path)
        await _require_writable_flow(tx, caller, path)
        changed = await tx.execute(
            "set_flow_archived",
            workspace_id=caller.workspace_id,
            path=path,
            archived=body.archived,
            edited_by=caller.username,
        )
        if changed == 0:
            raise NotFound(f"flow not found at path {path!r}")
        await audit.record(
            tx,
            caller.identity,
            caller.workspace_id,
            "flows.archive",
            path,
            action="update",
            parameters={"archived": body.archived},
        )
    return PlainTextResponse(f"Flow {path} {'archived' if body.archived else 'unarchived'}")


async def delete_flow(request: Request, caller: Caller) -> Response:
    """Delete a flow and every version of it."""
    path = request.path_params["path"]
    caller.require_scope(DOMAIN, "write", path)
    async with store_of(request).transaction() as tx:
        await lock_paths(tx, "flow", caller.workspace_id, path)
        await _require_writable_flow(tx, caller, path)
        await tx.execute("delete_flow_versions", workspace_id=caller.workspace_id, path=path)
        if await tx.execute("delete_flow", workspace_id=caller.workspace_id, path=path) == 0:
            raise NotFound(f"flow not found at path {path!r}")
        await audit.record(
            tx, caller.identity, caller.workspace_id, "flows.delete", path, action="delete"
        )
    return PlainTextResponse(f"Flow {path} deleted")


def flow_json(row: Row) -> dict[str, Any]:
    """Windmill's flow object (the definition only when the row has it)."""
    body = {
        "workspace_id": row["workspace_id"],
        "path": row["path"],
        "summary": row["summary"],
        "description": row["description"],
        "value": row.get("value"),
        "schema": row["schema"],
        "edited_by": row["edited_by"],
        "edited_at": row["edited_at"].isoformat(),
        "archived": bool(row["archived"]),
        "extra_perms": row.get("extra_perms") or {},
        "tag": row["tag"],
        "timeout": row["timeout"],
        "dedicated_worker": row["dedicated_worker"],
        "ws_error_handler_muted": bool(row["ws_error_handler_muted"]),
        "visible_to_runner_only": row["visible_to_runner_only"],
        "version_id": row.get("version_id"),
        "starred": False,
        "is_draft": False,
        "draft_only": False,
    }
    return {k: v for k, v in body.items() if v is not None}


def _version_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "created_at": row["created_at"].isoformat(),
        "created_by": row["created_by"],
    }


_PREFIX = "/w/{workspace}/flows"
routes = [
    Route(f"{_PREFIX}/create", in_workspace(create_flow), methods=["POST"]),
    Route(f"{_PREFIX}/update/{{path:path}}", in_workspace(update_flow), methods=["POST"]),
    Route(
        f"{_PREFIX}/get/v/{{version}}/p/{{path:path}}",
        in_workspace(get_flow_version),
        methods=["GET"],
    ),
    Route(f"{_PREFIX}/get/v/{{version}}", in_workspace(get_flow_version), methods=["GET"]),
    Route(f"{_PREFIX}/get/{{path:path}}", in_workspace(get_flow), methods=["GET"]),
    Route(f"{_PREFIX}/list", in_workspace(list_flows), methods=["GET"]),
    Route(f"{_PREFIX}/exists/{{path:path}}", in_workspace(exists_flow), methods=["GET"]),
    Route(f"{_PREFIX}/history/p/{{path:path}}", in_workspace(flow_history), methods=["GET"]),
    Route(
        f"{_PREFIX}/get_latest_version/{{path:path}}",
        in_workspace(latest_version),
        methods=["GET"],
    ),
    Route(f"{_PREFIX}/archive/{{path:path}}", in_workspace(archive_flow), methods=["POST"]),
    Route(f"{_PREFIX}/delete/{{path:path}}", in_workspace(delete_flow), methods=["DELETE"]),
]

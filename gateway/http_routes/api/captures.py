"""Capture mode under `/w/{workspace}/capture/...`: the UI's capture configs and the payloads
recorded for a script or flow (`gateway.capture`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway import capture
from gateway.http_routes.api import audit
from gateway.http_routes.api.auth import Caller, in_workspace
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.permissions import check_path, require_visible, require_writable
from gateway.http_routes.api.request_parsing import Page, query_text, read_model
from gateway.store import Row

DOMAIN = "capture"


class CaptureConfigBody(BaseModel):
    """The body of `POST /capture/set_config`."""

    model_config = ConfigDict(extra="ignore")

    trigger_kind: str
    path: str
    is_flow: bool
    trigger_config: Any = None


class MoveBody(BaseModel):
    """The body of `POST /capture/move/{runnable_kind}/{path}`."""

    model_config = ConfigDict(extra="ignore")

    new_path: str


def config_json(row: Row) -> dict[str, Any]:
    """Windmill's capture config object; absent fields are left out."""
    ping = row["last_server_ping"]
    body = {
        "trigger_kind": row["trigger_kind"],
        "trigger_config": row["trigger_config"],
        "error": row["error"],
        "last_server_ping": ping.isoformat() if ping else None,
    }
    return {k: v for k, v in body.items() if v is not None}


def capture_json(row: Row) -> dict[str, Any]:
    """Windmill's capture object."""
    return {
        "id": row["id"],
        "created_at": row["created_at"].isoformat(),
        "trigger_kind": row["trigger_kind"],
        "main_args": row["main_args"],
        "preprocessor_args": row["preprocessor_args"],
    }


def _runnable(request: Request, caller: Caller, action: str) -> tuple[str, str]:
    """The runnable kind and path of the URL, once the caller may `action` it."""
    runnable_kind, path = request.path_params["runnable_kind"], request.path_params["path"]
    caller.require_scope(DOMAIN, action, path)
    if action == "write":
        require_writable(caller, path)
    else:
        require_visible(caller, path, runnable_kind)
    return runnable_kind, path


async def _visible_capture(request: Request, caller: Caller, action: str) -> Row:
    """The capture of the URL, or NotFound when the caller may not see its runnable."""
    row = await capture.get_capture(
        store_of(request), caller.workspace_id, request.path_params["id"]
    )
    caller.require_scope(DOMAIN, action, row["path"])
    require_visible(caller, row["path"], "capture")
    return row


async def set_config(request: Request, caller: Caller) -> Response:
    """Write a capture config as the caller; the effective trigger config."""
    body = await read_model(request, CaptureConfigBody)
    path = check_path(body.path)
    caller.require_scope(DOMAIN, "write", path)
    require_writable(caller, path)
    async with store_of(request).transaction() as tx:
        row = await capture.set_config(
            tx,
            caller.workspace_id,
            trigger_kind=body.trigger_kind,
            path=path,
            is_flow=body.is_flow,
            trigger_config=body.trigger_config,
            owner=caller.username,
            email=caller.email,
        )
        await audit.record(
            tx,
            caller.identity,
            caller.workspace_id,
            "capture.set_config",
            path,
            action="update",
            parameters={"trigger_kind": body.trigger_kind},
        )
    return JSONResponse(row["trigger_config"])


async def ping_config(request: Request, caller: Caller) -> Response:
    """The UI still watches the capture."""
    runnable_kind, path = _runnable(request, caller, "read")
    async with store_of(request).transaction() as tx:
        await capture.ping_config(
            tx, caller.workspace_id, request.path_params["trigger_kind"], runnable_kind, path
        )
    return Response()


async def get_configs(request: Request, caller: Caller) -> Response:
    """The runnable's capture configs."""
    runnable_kind, path = _runnable(request, caller, "read")
    rows = await capture.get_configs(store_of(request), caller.workspace_id, runnable_kind, path)
    return JSONResponse([config_json(row) for row in rows])


async def list_captures(request: Request, caller: Caller) -> Response:
    """A page of the runnable's captures, newest first, large payloads elided."""
    runnable_kind, path = _runnable(request, caller, "read")
    page = Page.of(request)
    rows = await capture.list_captures(
        store_of(request),
        caller.workspace_id,
        runnable_kind,
        path,
        query_text(request, "trigger_kind"),
        page=page.number,
        per_page=page.per_page,
    )
    return JSONResponse([capture_json(row) for row in rows])


async def get_capture(request: Request, caller: Caller) -> Response:
    """One capture, payloads whole."""
    return JSONResponse(capture_json(await _visible_capture(request, caller, "read")))


async def delete_capture(request: Request, caller: Caller) -> Response:
    """Forget one capture."""
    row = await _visible_capture(request, caller, "write")
    require_writable(caller, row["path"])
    async with store_of(request).transaction() as tx:
        await capture.delete_capture(tx, caller.workspace_id, row["id"])
        await audit.record(
            tx,
            caller.identity,
            caller.workspace_id,
            "capture.delete",
            row["path"],
            action="delete",
            parameters={"id": row["id"]},
        )
    return Response()


async def move_captures(request: Request, caller: Caller) -> Response:
    """Move the runnable's captures and configs to `new_path`."""
    runnable_kind, path = _runnable(request, caller, "write")
    new_path = check_path((await read_model(request, MoveBody)).new_path, "new_path")
    require_writable(caller, new_path)
    async with store_of(request).transaction() as tx:
        await capture.move_captures_and_configs(
            tx, caller.workspace_id, runnable_kind, path, new_path
        )
        await audit.record(
            tx,
            caller.identity,
            caller.workspace_id,
            "capture.move",
            new_path,
            action="update",
            parameters={"from": path},
        )
    return Response()


_PREFIX = "/w/{workspace}/capture"
_RUNNABLE = "{runnable_kind}/{path:path}"
routes = [
    Route(f"{_PREFIX}/set_config", in_workspace(set_config), methods=["POST"]),
    Route(
        f"{_PREFIX}/ping_config/{{trigger_kind}}/{_RUNNABLE}",
        in_workspace(ping_config),
        methods=["POST"],
    ),
    Route(f"{_PREFIX}/get_configs/{_RUNNABLE}", in_workspace(get_configs), methods=["GET"]),
    Route(f"{_PREFIX}/list/{_RUNNABLE}", in_workspace(list_captures), methods=["GET"]),
    Route(f"{_PREFIX}/move/{_RUNNABLE}", in_workspace(move_captures), methods=["POST"]),
    Route(f"{_PREFIX}/{{id:int}}", in_workspace(get_capture), methods=["GET"]),
    Route(f"{_PREFIX}/{{id:int}}", in_workspace(delete_capture), methods=["DELETE"]),
]

"""Scripts under `/w/{workspace}/scripts/...`: create (a new version; the hash as text), get by
path or hash, list, archive, delete, exists.

Saving is `gateway.scripts.save_script`: the schema is inferred from the content, a syntax error
is a 400 naming `content`, and saving the latest version again creates nothing. A `parent_hash`,
when given, must be the latest version, so two editors cannot overwrite each other unknowingly.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.errors import Conflict, NotFound
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
from gateway.http_routes.api.request_parsing import Page, query_text, read_model
from gateway.scripts import ScriptDraft, format_hash, parse_hash, save_script
from gateway.store import Row, Transaction

DOMAIN = "scripts"


class NewScript(BaseModel):
    """The body of `POST /scripts/create` (fields the gateway does not use are ignored)."""

    model_config = ConfigDict(extra="ignore")

    path: str
    content: str
    language: str
    summary: str = Field(default="", max_length=10000)
    description: str = ""
    parent_hash: str | None = None
    kind: Literal["script", "trigger", "failure", "command", "approval", "preprocessor"] = "script"
    tag: str | None = Field(default=None, max_length=50)
    timeout: int | None = Field(default=None, gt=0)
    dedicated_worker: bool | None = None
    priority: int | None = Field(default=None, ge=0, le=100)


async def create_script(request: Request, caller: Caller) -> Response:
    """Save a new version of a script; 201 with its hash."""
    body = await read_model(request, NewScript)
    path = check_path(body.path)
    caller.require_scope(DOMAIN, "write", path)
    draft = ScriptDraft(
        path=path,
        content=body.content,
        language=body.language,
        summary=body.summary,
        description=body.description,
        tag=body.tag,
        timeout=body.timeout,
        dedicated_worker=bool(body.dedicated_worker),
        priority=body.priority,
        kind=body.kind,
    )
    async with store_of(request).transaction() as tx:
        await lock_paths(tx, "script", caller.workspace_id, path)
        await _require_writable_script(tx, caller, path)
        if body.parent_hash is not None:
            await _check_parent(tx, caller, path, parse_hash(body.parent_hash))
        saved, action = await save_script(tx, caller.workspace_id, draft, caller.username)
        if action != "unchanged":
            kind: audit.ActionKind = "create" if action == "created" else "update"
            await audit.record(
                tx,
                caller.identity,
                caller.workspace_id,
                f"scripts.{kind}",
                path,
                action=kind,
                parameters={"hash": saved.hash_hex},
            )
    return PlainTextResponse(saved.hash_hex, 201)


async def _require_writable_script(tx: Transaction, caller: Caller, path: str) -> None:
    latest = await tx.fetch_one("get_latest_script", workspace_id=caller.workspace_id, path=path)
    require_writable(caller, path, latest["extra_perms"] if latest else None)


async def _check_parent(tx: Transaction, caller: Caller, path: str, parent: int) -> None:
    latest = await tx.fetch_one("get_latest_script", workspace_id=caller.workspace_id, path=path)
    if latest is None or latest["hash"] != parent:
        current = format_hash(latest["hash"]) if latest else "none"
        raise Conflict(
            f"parent_hash {format_hash(parent)} is not the latest version of {path!r} "
            f"(latest: {current}); fetch the script again and retry"
        )


async def get_script_by_path(request: Request, caller: Caller) -> Response:
    """The latest version of a script."""
    path = request.path_params["path"]
    caller.require_scope(DOMAIN, "read", path)
    async with store_of(request).transaction() as tx:
        row = await tx.fetch_one("get_latest_script", workspace_id=caller.workspace_id, path=path)
    if row is None:
        raise NotFound(f"script not found at path {path!r}")
    require_visible(caller, path, "script", row["extra_perms"])
    return JSONResponse(script_json(row))


async def get_script_by_hash(request: Request, caller: Caller) -> Response:
    """One version of a script."""
    caller.require_scope(DOMAIN, "read")
    version = parse_hash(request.path_params["hash"])
    async with store_of(request).transaction() as tx:
        row = await tx.fetch_one(
            "get_script_by_hash", workspace_id=caller.workspace_id, hash=version
        )
    if row is None:
        raise NotFound(f"script version {format_hash(version)} not found")
    require_visible(caller, row["path"], "script", row["extra_perms"])
    return JSONResponse(script_json(row))


async def list_scripts(request: Request, caller: Caller) -> Response:
    """A page of the latest version of every script the caller may see."""
    caller.require_scope(DOMAIN, "read")
    page = Page.of(request)
    async with store_of(request).transaction() as tx:
        rows = await tx.fetch_all(
            "api_list_scripts",
            workspace_id=caller.workspace_id,
            path_start=query_text(request, "path_start"),
            path_exact=query_text(request, "path_exact"),
            is_admin=caller.is_admin,
            user_prefix=user_prefix(caller),
            limit=page.per_page,
            offset=page.offset,
        )
    return JSONResponse([script_json(row) for row in rows])


def script_json(row: Row) -> dict[str, Any]:
    """Windmill's script object."""
    body = {
        "workspace_id": row["workspace_id"],
        "hash": format_hash(row["hash"]),
        "path": row["path"],
        "parent_hashes": [format_hash(h) for h in row["parent_hashes"] or []],
        "summary": row["summary"],
        "description": row["description"],
        "content": row["content"],
        "created_by": row["created_by"],
        "created_at": row["created_at"].isoformat(),
        "archived": bool(row["archived"]),
        "deleted": bool(row["deleted"]),
        "schema": row["schema"],
        "is_template": False,
        "extra_perms": row.get("extra_perms") or {},
        "language": row["language"],
        "kind": row["kind"],
        "tag": row["tag"],
        "timeout": row["timeout"],
        "dedicated_worker": row["dedicated_worker"],
        "priority": row["priority"],
        "has_preprocessor": bool(row["has_preprocessor"]),
        "starred": False,
        "is_draft": False,
    }
    return {k: v for k, v in body.items() if v is not None}


async def _retire(request: Request, caller: Caller, query: str, operation: str) -> Response:
    path = request.path_params["path"]
    caller.require_scope(DOMAIN, "write", path)
    async with store_of(request).transaction() as tx:
        await lock_paths(tx, "script", caller.workspace_id, path)
        await _require_writable_script(tx, caller, path)
        if await tx.execute(query, workspace_id=caller.workspace_id, path=path) == 0:
            raise NotFound(f"script not found at path {path!r}")
        await audit.record(
            tx, caller.identity, caller.workspace_id, f"scripts.{operation}", path, action="delete"
        )
    return PlainTextResponse(path)


async def archive_script(request: Request, caller: Caller) -> Response:
    """Archive every version of a script: it can no longer be run by path."""
    return await _retire(request, caller, "archive_script_versions", "archive")


async def delete_script(request: Request, caller: Caller) -> Response:
    """Delete every version of a script."""
    return await _retire(request, caller, "delete_script_versions", "delete")


async def exists_script(request: Request, caller: Caller) -> Response:
    """Whether a live script exists at the path (JSON boolean)."""
    path = request.path_params["path"]
    caller.require_scope(DOMAIN, "read", path)
    async with store_of(request).transaction() as tx:
        row = await tx.fetch_one("get_latest_script", workspace_id=caller.workspace_id, path=path)
    return JSONResponse(row is not None)


_PREFIX = "/w/{workspace}/scripts"
routes = [
    Route(f"{_PREFIX}/create", in_workspace(create_script), methods=["POST"]),
    Route(f"{_PREFIX}/get/p/{{path:path}}", in_workspace(get_script_by_path), methods=["GET"]),
    Route(f"{_PREFIX}/get/h/{{hash}}", in_workspace(get_script_by_hash), methods=["GET"]),
    Route(f"{_PREFIX}/list", in_workspace(list_scripts), methods=["GET"]),
    Route(f"{_PREFIX}/archive/p/{{path:path}}", in_workspace(archive_script), methods=["POST"]),
    Route(f"{_PREFIX}/delete/p/{{path:path}}", in_workspace(delete_script), methods=["POST"]),
    Route(f"{_PREFIX}/exists/p/{{path:path}}", in_workspace(exists_script), methods=["GET"]),
]

"""The audit log: one `audit` row per write, in the transaction of the write; and
`GET /w/{workspace}/audit/list` to read it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.errors import Forbidden
from gateway.http_routes.api.auth import Caller, in_workspace
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.request_parsing import Page, query_text
from gateway.store import Json, Transaction, fetch_all
from gateway.workspaces import Identity

ActionKind = Literal["create", "update", "delete", "execute"]
GLOBAL_WORKSPACE: Final = "global"
"""The workspace recorded for writes outside any workspace (tokens, new workspaces)."""


async def record(
    tx: Transaction,
    actor: Identity,
    workspace_id: str,
    operation: str,
    resource: str | None,
    *,
    action: ActionKind,
    parameters: Mapping[str, Any] | None = None,
) -> None:
    """Append what `actor` did (`kafka_triggers.create`, ...) to `resource`; never secrets."""
    await tx.execute(
        "api_insert_audit",
        workspace_id=workspace_id,
        username=actor.username,
        operation=operation,
        action_kind=action,
        resource=resource,
        parameters=Json(dict(parameters)) if parameters else None,
        email=actor.email,
    )


async def list_audit(request: Request, caller: Caller) -> Response:
    """A page of the workspace's audit log, newest first (admins only); `operation` filters."""
    if not caller.is_admin:
        raise Forbidden("only workspace admins may read the audit log")
    caller.require_scope("audit_logs", "read")
    page = Page.of(request)
    rows = await fetch_all(
        store_of(request),
        "api_list_audit",
        workspace_id=caller.workspace_id,
        operation=query_text(request, "operation"),
        limit=page.per_page,
        offset=page.offset,
    )
    entries = [{**row, "timestamp": row["timestamp"].isoformat()} for row in rows]
    return JSONResponse([{k: v for k, v in entry.items() if v is not None} for entry in entries])


routes = [Route("/w/{workspace}/audit/list", in_workspace(list_audit), methods=["GET"])]

"""The audit log: one `audit` row per write, in the transaction of the write; and
`GET /w/{workspace}/audit/list` to read it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.errors import Forbidden, InvalidInput
from gateway.http_routes.api.auth import Caller, in_workspace
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.request_parsing import Page, query_text
from gateway.store import Json, Transaction, fetch_all
from gateway.workspaces import Identity

ActionKind = Literal["create", "update", "delete", "execute"]
ALL_TIME: Final = datetime(1970, 1, 1, tzinfo=UTC)
"""The `since` of a listing of the whole audit log."""
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
    """A page of the workspace's audit log, newest first (admins only); filters: `username`,
    `operation`, `resource`, `action_kind` and `after` (an ISO time)."""
    if not caller.is_admin:
        raise Forbidden("only workspace admins may read the audit log")
    caller.require_scope("audit_logs", "read")
    page = Page.of(request)
    rows = await fetch_all(
        store_of(request),
        "list_audit_entries",
        workspace_id=caller.workspace_id,
        username=query_text(request, "username"),
        operation=query_text(request, "operation"),
        resource=query_text(request, "resource"),
        action_kind=query_text(request, "action_kind"),
        since=_after(request) or ALL_TIME,
        limit=page.per_page,
        offset=page.offset,
    )
    entries = [{**row, "timestamp": row["timestamp"].isoformat()} for row in rows]
    return JSONResponse([{k: v for k, v in entry.items() if v is not None} for entry in entries])


def _after(request: Request) -> datetime | None:
    text = query_text(request, "after")
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput("after", f"{text!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


routes = [Route("/w/{workspace}/audit/list", in_workspace(list_audit), methods=["GET"])]

"""The quarantine of a workspace, and its redrive button. Admins only, as in the API: the raw
bytes may hold anything a source sent."""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.dashboard.access import dashboard_caller, require_same_origin
from gateway.dashboard.rendering import page_path, render
from gateway.errors import Forbidden, NotFound
from gateway.http_routes.api import audit
from gateway.http_routes.api.auth import Caller
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.request_parsing import query_int
from gateway.triggers.quarantine import (
    REBUILDABLE_KINDS,
    get_quarantined_event,
    list_quarantined_events,
    redrive,
)

PER_PAGE: Final = 30
RAW_PREVIEW_BYTES: Final = 512


def _require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise Forbidden("only workspace admins may read or redrive the quarantine")


async def quarantine_page(request: Request) -> Response:
    """A page of quarantined events, newest first, each with a redrive button."""
    caller = await dashboard_caller(request)
    _require_admin(caller)
    page = query_int(request, "page", 1, minimum=1)
    store = store_of(request)
    events = await list_quarantined_events(store, caller.workspace_id, page=page, per_page=PER_PAGE)
    redriven = query_int(request, "redriven", 0)
    outcome = None
    if redriven:
        try:
            outcome = await get_quarantined_event(store, caller.workspace_id, redriven)
        except NotFound:
            outcome = None
    return render(
        request,
        "quarantine.html",
        {
            "workspace": caller.workspace_id,
            "user": caller.username,
            "is_admin": caller.is_admin,
            "section": "quarantine",
            "events": events,
            "rebuildable": REBUILDABLE_KINDS,
            "preview_bytes": RAW_PREVIEW_BYTES,
            "outcome": outcome,
            "page": page,
            "more": len(events) == PER_PAGE,
        },
    )


async def redrive_event(request: Request) -> Response:
    """Submit a quarantined event again, audited as the API's redrive is, then show the
    quarantine with what became of it (its job, or the reason it still cannot become one)."""
    require_same_origin(request)
    caller = await dashboard_caller(request)
    _require_admin(caller)
    raw_id = request.path_params["id"]
    if not raw_id.isdigit():
        raise NotFound(f"no quarantined event {raw_id!r}")
    event_id = int(raw_id)
    store = store_of(request)
    outcome = await redrive(store, caller.workspace_id, event_id)
    async with store.transaction() as tx:
        await audit.record(
            tx, caller.identity, caller.workspace_id, "quarantine.redrive", str(event_id),
            action="execute", parameters={"job_id": str(outcome.job_id), "error": outcome.error},
        )  # fmt: skip
    target = page_path(request, "ui_quarantine", workspace=caller.workspace_id)
    return RedirectResponse(f"{target}?redriven={event_id}", status_code=303)

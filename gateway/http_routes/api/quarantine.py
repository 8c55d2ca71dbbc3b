"""Events that could not become jobs: `GET /w/{ws}/quarantine/list`, `GET .../get/{id}`,
`POST .../redrive/{id}`. Admins only: the raw bytes may hold anything a source sent. A scoped
token sees the events of the triggers it may read (`kafka_triggers:read:<path>`, ...) and
redrives those it may write."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.errors import Forbidden, InvalidInput
from gateway.http_routes.api import audit
from gateway.http_routes.api.auth import Caller, in_workspace, scope_allows
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.request_parsing import Page, query_text
from gateway.triggers.quarantine import get_quarantined_event, list_quarantined_events, redrive


def _admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise Forbidden("only workspace admins may read or redrive the quarantine")


def _event_id(request: Request) -> int:
    raw = request.path_params["id"]
    if not raw.isdigit():
        raise InvalidInput("id", f"{raw!r} is not a quarantined event id")
    return int(raw)


async def list_events(request: Request, caller: Caller) -> Response:
    """A page of quarantined events, newest first (`trigger_kind`, `trigger_path` filters)."""
    _admin(caller)
    page = Page.of(request)
    found = await list_quarantined_events(
        store_of(request),
        caller.workspace_id,
        trigger_kind=query_text(request, "trigger_kind"),
        trigger_path=query_text(request, "trigger_path"),
        page=page.number,
        per_page=page.per_page,
    )
    readable = [
        entry
        for entry in found
        if scope_allows(
            caller.token.scopes, f"{entry.trigger_kind}_triggers", "read", entry.trigger_path
        )
    ]
    return JSONResponse([entry.to_json() for entry in readable])


async def get_event(request: Request, caller: Caller) -> Response:
    """One quarantined event with its raw bytes in base64."""
    _admin(caller)
    entry = await get_quarantined_event(store_of(request), caller.workspace_id, _event_id(request))
    caller.require_scope(f"{entry.trigger_kind}_triggers", "read", entry.trigger_path)
    return JSONResponse(entry.to_json())


async def redrive_event(request: Request, caller: Caller) -> Response:
    """Submit the event again: `{"job_id"}` or, when it still cannot become a job, 400."""
    _admin(caller)
    event_id = _event_id(request)
    store = store_of(request)
    entry = await get_quarantined_event(store, caller.workspace_id, event_id)
    caller.require_scope(f"{entry.trigger_kind}_triggers", "write", entry.trigger_path)
    outcome = await redrive(store, caller.workspace_id, event_id)
    async with store.transaction() as tx:
        await audit.record(
            tx, caller.identity, caller.workspace_id, "quarantine.redrive", str(event_id),
            action="execute", parameters={"job_id": str(outcome.job_id), "error": outcome.error},
        )  # fmt: skip
    if outcome.job_id is None:
        raise InvalidInput("id", f"event {event_id} still cannot become a job: {outcome.error}")
    return JSONResponse({"job_id": str(outcome.job_id)})


routes = [
    Route("/w/{workspace}/quarantine/list", in_workspace(list_events), methods=["GET"]),
    Route("/w/{workspace}/quarantine/get/{id}", in_workspace(get_event), methods=["GET"]),
    Route("/w/{workspace}/quarantine/redrive/{id}", in_workspace(redrive_event), methods=["POST"]),
]

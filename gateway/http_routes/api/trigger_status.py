"""The health of a workspace's triggers, of every kind: `GET /w/{workspace}/triggers/status`.

Answers one status per trigger the caller may read (its path is visible and the token's scopes
allow `<kind>_triggers:read`), ordered by kind and path: mode, state, holder, ages of the last
ping and of the last event, events in the last minute, jobs failed in the last hour, quarantined
events, error and source lag (`gateway.observability.trigger_health`). Query: `kind` keeps one
kind; `lag=false` skips the source lag, which is read from the sources (cached for a few seconds).
"""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.errors import InvalidInput
from gateway.http_routes.api.auth import Caller, in_workspace, scope_allows
from gateway.http_routes.api.permissions import visible
from gateway.http_routes.api.request_parsing import query_bool, query_text
from gateway.listeners.supervisor import LeaseTimings
from gateway.observability.source_lag import LagProbe
from gateway.observability.trigger_health import read_trigger_health, with_lags
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.trigger_tables import TRIGGER_TABLES


class _Instance(Protocol):
    """What this endpoint reads from the gateway serving it."""

    settings: Settings
    store: Store
    lags: LagProbe


async def trigger_status(request: Request, caller: Caller) -> Response:
    """The status of every trigger the caller may read."""
    kind = query_text(request, "kind")
    if kind is not None and kind not in TRIGGER_TABLES:
        known = ", ".join(sorted(TRIGGER_TABLES))
        raise InvalidInput("kind", f"{kind!r} is not a trigger kind: use one of {known}")
    instance: _Instance = request.app.state.gateway
    found = await read_trigger_health(
        instance.store, caller.workspace_id, LeaseTimings.from_settings(instance.settings)
    )
    shown = [
        status
        for status in found
        if kind in (None, status.trigger.kind)
        and visible(caller, status.trigger.path)
        and scope_allows(
            caller.token.scopes, f"{status.trigger.kind}_triggers", "read", status.trigger.path
        )
    ]
    if query_bool(request, "lag") is not False:
        shown = await with_lags(shown, instance.lags)
    return JSONResponse([status.to_json() for status in shown])


routes = [
    Route("/w/{workspace}/triggers/status", in_workspace(trigger_status), methods=["GET"]),
]

"""The triggers of a workspace, every kind on one page: health colour, holder, last event and a
chart of the last hour's events, worst health first."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from gateway.dashboard.access import dashboard_caller
from gateway.dashboard.activity import EventRate, JobActivity, TriggerKey, age_text, job_activity
from gateway.dashboard.health import TriggerHealth, trigger_health
from gateway.dashboard.rendering import render
from gateway.http_routes.api.auth import Caller, scope_allows
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.permissions import visible
from gateway.jobs.read import MAX_PER_PAGE, JobFilter, list_jobs
from gateway.listeners.supervisor import LeaseTimings
from gateway.settings import Settings
from gateway.store import Row, Store
from gateway.store.trigger_tables import TRIGGER_TABLES
from gateway.store.values import utc_now

SEVERITY: Final = {"red": 0, "yellow": 1, "green": 2, "grey": 3}
"""The order of the list: what needs a person first."""


@dataclass(frozen=True, slots=True)
class TriggerLine:
    """One trigger as the page shows it."""

    kind: str
    path: str
    script_path: str
    mode: str
    health: TriggerHealth
    holder: str | None
    last_ping: str
    last_event: datetime | None
    last_event_age: str
    rate: EventRate

    @property
    def key(self) -> TriggerKey:
        """The trigger as its jobs name it."""
        return (self.kind, self.path)


async def triggers_page(request: Request) -> Response:
    """Every trigger the caller may see, with its health and recent events."""
    caller = await dashboard_caller(request)
    caller.require_scope("jobs", "read")
    store = store_of(request)
    settings: Settings = request.app.state.gateway.settings
    rows = await _trigger_rows(store, caller)
    jobs = await list_jobs(store, caller.workspace_id, JobFilter(per_page=MAX_PER_PAGE))
    now = utc_now()
    cut = len(jobs) == MAX_PER_PAGE
    activity = job_activity(jobs, now, cut=cut)
    if cut:
        activity = await _with_older_last_events(store, caller.workspace_id, rows, activity)
    timings = LeaseTimings.from_settings(settings)
    lines = sorted(
        (_line(kind, row, now, timings, activity) for kind, row in rows),
        key=lambda line: (SEVERITY[line.health.colour], line.kind, line.path),
    )
    counts = dict.fromkeys(SEVERITY, 0)
    for line in lines:
        counts[line.health.colour] += 1
    return render(
        request,
        "triggers.html",
        {
            "workspace": caller.workspace_id,
            "user": caller.username,
            "is_admin": caller.is_admin,
            "section": "triggers",
            "triggers": lines,
            "counts": counts,
            "covered_since": activity.covered_since,
            "now": now,
        },
    )


async def _trigger_rows(store: Store, caller: Caller) -> list[tuple[str, Row]]:
    """The rows of every kind that the caller's user and token may read, in one transaction."""
    found: list[tuple[str, Row]] = []
    async with store.transaction() as tx:
        for kind in TRIGGER_TABLES:
            rows = await tx.fetch_all(f"list_{kind}_triggers", workspace_id=caller.workspace_id)
            found.extend(
                (kind, row)
                for row in rows
                if visible(caller, row["path"])
                and scope_allows(caller.token.scopes, f"{kind}_triggers", "read", row["path"])
            )
    return found


async def _with_older_last_events(
    store: Store, workspace_id: str, rows: list[tuple[str, Row]], activity: JobActivity
) -> JobActivity:
    """`activity` with the last event of the triggers the newest jobs did not reach, one each."""
    last_event = dict(activity.last_event)
    for kind, row in rows:
        if (kind, row["path"]) in last_event:
            continue
        newest = await list_jobs(
            store, workspace_id, JobFilter(trigger_kind=kind, trigger=row["path"], per_page=1)
        )
        if newest:
            last_event[kind, row["path"]] = datetime.fromisoformat(newest[0]["created_at"])
    return replace(activity, last_event=last_event)


def _line(
    kind: str, row: Row, now: datetime, timings: LeaseTimings, activity: JobActivity
) -> TriggerLine:
    leased = TRIGGER_TABLES[kind].leased
    key = (kind, row["path"])
    last_event = activity.last_event.get(key)
    ping = row["last_server_ping"] if leased else None
    return TriggerLine(
        kind=kind,
        path=row["path"],
        script_path=row["script_path"],
        mode=row["mode"],
        health=trigger_health(row, leased, now, timings),
        holder=row["server_id"] if leased else None,
        last_ping=age_text(ping, now) if leased else "no lease",
        last_event=last_event,
        last_event_age=age_text(last_event, now),
        rate=activity.rate_of(key),
    )

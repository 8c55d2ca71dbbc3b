"""The health of triggers as an operator sees it: one status per trigger, of every kind.

A workspace's statuses come from three queries (the trigger rows of every kind, their jobs, their
quarantine), never one per trigger; ages are measured on the database clock. The state:

- `disabled`: the mode is `disabled`;
- `unheld`: a leased trigger that no instance has held for longer than the claim interval;
- `connecting`: a leased trigger waiting for the next claim pass, or claimed but not connected;
- `error`: its holder reports an error (the row's `error`);
- `suspended`: consumed (or served), its jobs parked until it is resumed;
- `healthy`: everything else.

Source lag is added separately (`with_lags`), so that a caller reads it only for the triggers it
shows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from gateway.listeners.lease import CONNECTING, LEASED_MODES, TriggerRef
from gateway.listeners.supervisor import LeaseTimings
from gateway.observability.source_lag import LagProbe, SourceLag
from gateway.store import Store, fetch_all
from gateway.store.trigger_tables import TRIGGER_TABLES

EVENT_WINDOW_S: Final = 60.0
FAILURE_WINDOW_S: Final = 3600.0


class HealthState(StrEnum):
    """What an operator needs to know about a trigger at a glance."""

    HEALTHY = "healthy"
    CONNECTING = "connecting"
    ERROR = "error"
    UNHELD = "unheld"
    DISABLED = "disabled"
    SUSPENDED = "suspended"


@dataclass(frozen=True, slots=True)
class TriggerHealth:
    """One trigger's status; ages in seconds, None when there is nothing to measure."""

    trigger: TriggerRef
    mode: str
    state: HealthState
    server_id: str | None
    last_ping_age_s: float | None
    last_event_age_s: float | None
    events_last_minute: int
    failed_last_hour: int
    quarantined: int
    quarantined_recently: int
    error: str | None
    lag: SourceLag | None = None

    def to_json(self) -> dict[str, Any]:
        """The status as the API and `gateway triggers status --json` show it."""
        return {
            "kind": self.trigger.kind,
            "path": self.trigger.path,
            "mode": self.mode,
            "state": self.state.value,
            "server_id": self.server_id,
            "last_ping_age_s": _rounded(self.last_ping_age_s),
            "last_event_age_s": _rounded(self.last_event_age_s),
            "events_last_minute": self.events_last_minute,
            "failed_last_hour": self.failed_last_hour,
            "quarantined": self.quarantined,
            "error": self.error,
            "lag": self.lag.to_json() if self.lag is not None else None,
        }


def health_state(
    *,
    leased: bool,
    mode: str,
    server_id: str | None,
    ping_age_s: float | None,
    edited_age_s: float,
    error: str | None,
    timings: LeaseTimings,
) -> HealthState:
    """The state of a trigger from its row (see the module docstring)."""
    if mode not in LEASED_MODES:
        return HealthState.DISABLED
    if leased:
        if server_id is None or ping_age_s is None or ping_age_s > timings.stale_after_s:
            # A stale lease became claimable once the staleness window passed; a lease never
            # claimed (or given back, or reset by an edit) was claimable since the last edit.
            unheld_s = edited_age_s if ping_age_s is None else ping_age_s - timings.stale_after_s
            if unheld_s > timings.claim_interval_s:
                return HealthState.UNHELD
            return HealthState.CONNECTING
        if error == CONNECTING:
            return HealthState.CONNECTING
        if error is not None:
            return HealthState.ERROR
    return HealthState.SUSPENDED if mode == "suspended" else HealthState.HEALTHY


async def read_trigger_health(
    store: Store,
    workspace_id: str,
    timings: LeaseTimings,
    *,
    quarantine_window_s: float = FAILURE_WINDOW_S,
) -> list[TriggerHealth]:
    """The status of every trigger of the workspace, by kind and path, without source lag.

    `quarantined_recently` counts the events quarantined in the last `quarantine_window_s` and
    still waiting for a redrive.
    """
    triggers = await fetch_all(store, "list_trigger_states", workspace_id=workspace_id)
    if not triggers:
        return []
    activity = _by_trigger(
        await fetch_all(
            store,
            "trigger_job_activity",
            workspace_id=workspace_id,
            event_window_s=EVENT_WINDOW_S,
            failure_window_s=FAILURE_WINDOW_S,
        )
    )
    quarantine = _by_trigger(
        await fetch_all(
            store,
            "trigger_quarantine_counts",
            workspace_id=workspace_id,
            recent_window_s=quarantine_window_s,
        )
    )
    found: list[TriggerHealth] = []
    for row in triggers:
        key = (row["kind"], row["path"])
        now = as_moment(row["db_now"])
        ping_age_s = age_s(now, row["last_server_ping"])
        jobs = activity.get(key, {})
        waiting = quarantine.get(key, {})
        found.append(
            TriggerHealth(
                trigger=TriggerRef(row["kind"], workspace_id, row["path"]),
                mode=row["mode"],
                state=health_state(
                    leased=TRIGGER_TABLES[row["kind"]].leased,
                    mode=row["mode"],
                    server_id=row["server_id"],
                    ping_age_s=ping_age_s,
                    edited_age_s=age_s(now, row["edited_at"]) or 0.0,
                    error=row["error"],
                    timings=timings,
                ),
                server_id=row["server_id"],
                last_ping_age_s=ping_age_s,
                last_event_age_s=age_s(now, jobs.get("last_event_at")),
                events_last_minute=int(jobs.get("recent_events") or 0),
                failed_last_hour=int(jobs.get("recent_failures") or 0),
                quarantined=int(waiting.get("waiting") or 0),
                quarantined_recently=int(waiting.get("recent") or 0),
                error=row["error"],
            )
        )
    return found


async def with_lags(health: Sequence[TriggerHealth], probe: LagProbe) -> list[TriggerHealth]:
    """`health` with the source lag of every consumed trigger whose kind has one."""
    lags = await probe.lags(
        status.trigger for status in health if status.state is not HealthState.DISABLED
    )
    return [dataclasses.replace(status, lag=lags.get(status.trigger)) for status in health]


@dataclass(frozen=True, slots=True)
class HeldLease:
    """A trigger whose row names an instance as its holder."""

    trigger: TriggerRef
    error: str | None
    ping_age_s: float | None


async def read_held_leases(store: Store, server_id: str) -> dict[TriggerRef, HeldLease]:
    """The triggers, of every workspace, whose rows name `server_id` as their holder."""
    held: dict[TriggerRef, HeldLease] = {}
    for row in await fetch_all(store, "list_triggers_held_by", server_id=server_id):
        trigger = TriggerRef(row["kind"], row["workspace_id"], row["path"])
        held[trigger] = HeldLease(
            trigger, row["error"], age_s(as_moment(row["db_now"]), row["last_server_ping"])
        )
    return held


def as_moment(value: datetime | str) -> datetime:
    """A timestamp as the store returns it: a datetime, or SQLite's text for computed columns."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def age_s(now: datetime, moment: datetime | str | None) -> float | None:
    """Seconds from `moment` to `now` (never negative); None without a moment."""
    if moment is None:
        return None
    return max((now - as_moment(moment)).total_seconds(), 0.0)


def _by_trigger(rows: list[dict[str, Any]]) -> Mapping[tuple[str, str], Mapping[str, Any]]:
    return {(row["kind"], row["path"]): row for row in rows}


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)

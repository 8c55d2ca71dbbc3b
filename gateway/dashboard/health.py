"""A trigger's health at a glance: the state `observability.trigger_health` gives it (the API,
the CLI and the alerts judge by the same), as a colour and a line saying why.

grey    disabled
red     an error reported by its listener, or enabled but held by no live instance for longer
        than the claim interval (never claimed since its edit, or its holder stopped pinging)
yellow  connecting (waiting for a claim, or claimed and connecting), or suspended (jobs parked)
green   held by a live instance that reports no error (or, for HTTP and email, enabled: every
        instance serves those, there is no lease)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from gateway.listeners.supervisor import LeaseTimings
from gateway.observability.trigger_health import HealthState, age_s, health_state
from gateway.store import Row

Colour = Literal["green", "yellow", "red", "grey"]

COLOURS: Final[Mapping[HealthState, Colour]] = {
    HealthState.HEALTHY: "green",
    HealthState.CONNECTING: "yellow",
    HealthState.SUSPENDED: "yellow",
    HealthState.ERROR: "red",
    HealthState.UNHELD: "red",
    HealthState.DISABLED: "grey",
}


@dataclass(frozen=True, slots=True)
class TriggerHealth:
    """How a trigger is doing: its colour, a one-word state and a sentence for people."""

    colour: Colour
    state: str
    detail: str


def trigger_health(row: Row, leased: bool, now: datetime, timings: LeaseTimings) -> TriggerHealth:
    """The health of the trigger `row` (a `list_<kind>_triggers` row) at `now`."""
    holder = row["server_id"] if leased else None
    ping_age = age_s(now, row["last_server_ping"]) if leased else None
    error = row["error"] if leased else None
    state = health_state(
        leased=leased,
        mode=row["mode"],
        server_id=holder,
        ping_age_s=ping_age,
        edited_age_s=age_s(now, row["edited_at"]) or 0.0,
        error=error,
        timings=timings,
    )
    return TriggerHealth(COLOURS[state], state.value, _detail(state, holder, ping_age, error))


def _detail(
    state: HealthState, holder: str | None, ping_age: float | None, error: str | None
) -> str:
    """The sentence saying why the trigger is in `state`."""
    live = holder is not None and ping_age is not None
    match state:
        case HealthState.DISABLED:
            return "disabled: its source is not consumed"
        case HealthState.SUSPENDED:
            return "suspended: events are consumed, their jobs are parked"
        case HealthState.ERROR:
            return error or "its listener reports an error"
        case HealthState.UNHELD if live:
            return f"{holder} stopped pinging it {ping_age:.0f} s ago"
        case HealthState.UNHELD:
            return "no instance holds it"
        case HealthState.CONNECTING if live:
            return f"{holder} is connecting to its source"
        case HealthState.CONNECTING:
            return "waiting for an instance to claim it"
        case _:
            return "listening" if holder is not None else "served"

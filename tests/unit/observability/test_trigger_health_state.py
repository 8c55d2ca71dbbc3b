"""How a trigger's row becomes the state an operator sees, and how a status is shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.listeners.lease import CONNECTING, TriggerRef
from gateway.listeners.supervisor import LeaseTimings
from gateway.observability.source_lag import SourceLag
from gateway.observability.trigger_health import HealthState, TriggerHealth, age_s, health_state

TIMINGS = LeaseTimings(claim_interval_s=15, ping_interval_s=5, stale_after_s=15)


def state(
    *,
    leased: bool = True,
    mode: str = "enabled",
    server_id: str | None = "gw-a",
    ping_age_s: float | None = 1.0,
    edited_age_s: float = 3600.0,
    error: str | None = None,
) -> HealthState:
    return health_state(
        leased=leased,
        mode=mode,
        server_id=server_id,
        ping_age_s=ping_age_s,
        edited_age_s=edited_age_s,
        error=error,
        timings=TIMINGS,
    )


def test_a_held_connected_trigger_is_healthy_and_a_suspended_one_says_so() -> None:
    assert state() is HealthState.HEALTHY
    assert state(mode="suspended") is HealthState.SUSPENDED


def test_the_error_column_of_a_held_trigger_decides_between_connecting_and_error() -> None:
    assert state(error=CONNECTING) is HealthState.CONNECTING
    assert state(error="cannot connect: refused") is HealthState.ERROR
    assert state(mode="suspended", error="cannot connect: refused") is HealthState.ERROR


def test_a_disabled_trigger_is_disabled_whatever_its_lease_columns_say() -> None:
    assert state(mode="disabled", error="stale error") is HealthState.DISABLED
    assert state(leased=False, mode="disabled") is HealthState.DISABLED


def test_a_trigger_nobody_holds_is_connecting_within_a_claim_interval_then_unheld() -> None:
    assert state(server_id=None, ping_age_s=None, edited_age_s=10) is HealthState.CONNECTING
    assert state(server_id=None, ping_age_s=None, edited_age_s=16) is HealthState.UNHELD


def test_a_stale_lease_counts_as_unheld_from_the_end_of_the_staleness_window() -> None:
    # Claimable since 15 s after the last ping; a claim pass must come within 15 s more.
    assert state(ping_age_s=29) is HealthState.CONNECTING
    assert state(ping_age_s=31) is HealthState.UNHELD
    assert state(ping_age_s=31, error="cannot connect") is HealthState.UNHELD


@pytest.mark.parametrize("mode", ["enabled", "suspended"])
def test_triggers_served_without_a_lease_are_never_unheld(mode: str) -> None:
    found = state(leased=False, mode=mode, server_id=None, ping_age_s=None)
    assert found is (HealthState.HEALTHY if mode == "enabled" else HealthState.SUSPENDED)


def test_ages_are_measured_from_text_or_datetime_and_never_negative() -> None:
    now = datetime(2024, 5, 1, 12, 0, 10, tzinfo=UTC)
    assert age_s(now, "2024-05-01T12:00:00.000000+00:00") == 10.0
    assert age_s(now, now - timedelta(seconds=2.5)) == 2.5
    assert age_s(now, now + timedelta(seconds=1)) == 0.0
    assert age_s(now, None) is None


def test_a_status_as_json_shows_an_unknown_lag_with_its_reason() -> None:
    status = TriggerHealth(
        trigger=TriggerRef("kafka", "ws", "u/alice/orders"),
        mode="enabled",
        state=HealthState.ERROR,
        server_id="gw-a",
        last_ping_age_s=1.26,
        last_event_age_s=None,
        events_last_minute=3,
        failed_last_hour=1,
        quarantined=2,
        quarantined_recently=2,
        error="connection lost",
        lag=SourceLag("messages", None, "no answer"),
    )
    assert status.to_json() == {
        "kind": "kafka",
        "path": "u/alice/orders",
        "mode": "enabled",
        "state": "error",
        "server_id": "gw-a",
        "last_ping_age_s": 1.3,
        "last_event_age_s": None,
        "events_last_minute": 3,
        "failed_last_hour": 1,
        "quarantined": 2,
        "error": "connection lost",
        "lag": {"value": "unknown", "unit": "messages", "error": "no answer"},
    }
    assert SourceLag("bytes", 4096).to_json() == {"value": 4096, "unit": "bytes"}

"""Which statuses hold a rule's condition, and how long a condition must last to fire."""

from __future__ import annotations

from gateway.clock import FakeClock
from gateway.listeners.lease import TriggerRef
from gateway.observability.alert_rules import (
    QUARANTINE_GROWING,
    SOURCE_LAG,
    TRIGGER_IN_ERROR,
    TRIGGER_UNHELD,
    AlertThresholds,
    ConditionTracker,
    Notice,
    trigger_conditions,
)
from gateway.observability.source_lag import SourceLag
from gateway.observability.trigger_health import HealthState, TriggerHealth

ORDERS = TriggerRef("kafka", "ws", "u/alice/orders")
RESOURCE = "kafka_trigger/u/alice/orders"


def status(
    state: HealthState = HealthState.HEALTHY,
    *,
    error: str | None = None,
    quarantined_recently: int = 0,
    lag: SourceLag | None = None,
) -> TriggerHealth:
    return TriggerHealth(
        trigger=ORDERS,
        mode="enabled",
        state=state,
        server_id="gw-a",
        last_ping_age_s=40.0,
        last_event_age_s=None,
        events_last_minute=0,
        failed_last_hour=0,
        quarantined=quarantined_recently + 1,
        quarantined_recently=quarantined_recently,
        error=error,
        lag=lag,
    )


def test_a_healthy_trigger_holds_no_condition() -> None:
    seen = trigger_conditions([status()], AlertThresholds(lag_messages=10))
    assert seen.conditions == []
    assert seen.undetermined == set()


def test_error_and_unheld_states_hold_their_rules_with_a_readable_message() -> None:
    thresholds = AlertThresholds()
    (error,) = trigger_conditions(
        [status(HealthState.ERROR, error="refused")], thresholds
    ).conditions
    assert error.key == (TRIGGER_IN_ERROR, "ws", RESOURCE)
    assert error.message == "kafka trigger ws/u/alice/orders is in error: refused"
    (unheld,) = trigger_conditions([status(HealthState.UNHELD)], thresholds).conditions
    assert unheld.key == (TRIGGER_UNHELD, "ws", RESOURCE)
    assert unheld.message.endswith("is enabled but no instance holds it (last ping 40s ago)")


def test_quarantined_events_hold_the_rule_from_the_minimum_count() -> None:
    thresholds = AlertThresholds(quarantine_min_events=3, quarantine_window_s=600)
    assert trigger_conditions([status(quarantined_recently=2)], thresholds).conditions == []
    (growing,) = trigger_conditions([status(quarantined_recently=3)], thresholds).conditions
    assert growing.rule == QUARANTINE_GROWING
    assert "quarantined 3 event(s) in the last 600s; 4 wait for a redrive" in growing.message


def test_lag_holds_over_its_unit_threshold_and_an_unknown_lag_is_undetermined() -> None:
    thresholds = AlertThresholds(lag_messages=100)
    over = status(lag=SourceLag("messages", 101))
    (lagging,) = trigger_conditions([over], thresholds).conditions
    assert lagging.key == (SOURCE_LAG, "ws", RESOURCE)
    assert trigger_conditions([status(lag=SourceLag("messages", 100))], thresholds).conditions == []
    unknown = trigger_conditions([status(lag=SourceLag("messages", None, "down"))], thresholds)
    assert unknown.conditions == []
    assert unknown.undetermined == {(SOURCE_LAG, "ws", RESOURCE)}
    # No threshold for bytes: the rule says nothing about a slot's lag.
    assert trigger_conditions([status(lag=SourceLag("bytes", 10**9))], thresholds).conditions == []


def test_only_error_and_unheld_conditions_must_last() -> None:
    thresholds = AlertThresholds(trigger_error_after_s=300, unheld_after_s=60)
    assert thresholds.lasting_s(TRIGGER_IN_ERROR) == 300
    assert thresholds.lasting_s(TRIGGER_UNHELD) == 60
    assert thresholds.lasting_s(SOURCE_LAG) == 0
    assert not AlertThresholds().measures_lag
    assert AlertThresholds(lag_bytes=1).measures_lag


async def test_a_condition_lasts_from_the_pass_that_first_saw_it_until_it_stops() -> None:
    clock = FakeClock()
    tracker = ConditionTracker(clock)
    key = (TRIGGER_IN_ERROR, "ws", RESOURCE)
    tracker.observe([key], [])
    await clock.advance(30)
    tracker.observe([key], [])
    assert tracker.lasted_s(key) == 30
    tracker.mark_fired([key])
    assert tracker.fired(key)
    tracker.observe([], [])
    assert tracker.lasted_s(key) == 0
    assert not tracker.fired(key)


async def test_an_undetermined_condition_keeps_its_clock_and_its_incident() -> None:
    clock = FakeClock()
    tracker = ConditionTracker(clock)
    key = (SOURCE_LAG, "ws", RESOURCE)
    tracker.observe([key], [])
    tracker.mark_fired([key])
    await clock.advance(10)
    tracker.observe([], [key])
    assert tracker.fired(key)
    assert tracker.lasted_s(key) == 10


def test_notices_read_as_chat_messages() -> None:
    fired = Notice(TRIGGER_IN_ERROR, "ws", RESOURCE, "kafka trigger ws/x is in error", False)
    assert fired.text == "[gateway] FIRING trigger_in_error: kafka trigger ws/x is in error"
    cleared = Notice(TRIGGER_IN_ERROR, "ws", RESOURCE, "kafka trigger ws/x is in error", True)
    assert cleared.text.startswith("[gateway] RESOLVED trigger_in_error: ")

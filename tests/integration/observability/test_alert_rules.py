"""Each alert rule fires once and clears once, on both dialects: one `alerts` row per incident, and
a notice each way to a webhook of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

import pytest

from gateway.clock import FakeClock
from gateway.executor.worker import Executor
from gateway.jobs.retry import RetryPolicy
from gateway.listeners.lease import TriggerRef
from gateway.listeners.sql_lease_store import SqlLeaseStore
from gateway.listeners.supervisor import LeaseTimings
from gateway.observability.alert_rules import (
    JOB_FAILURES,
    QUARANTINE_GROWING,
    SOURCE_LAG,
    TRIGGER_IN_ERROR,
    TRIGGER_UNHELD,
    AlertRules,
    AlertThresholds,
)
from gateway.observability.notifier import WebhookNotifier
from gateway.observability.source_lag import LagProbe, SourceLag
from gateway.settings import Settings
from gateway.store import Row, Store, fetch_all
from gateway.triggers.quarantine import quarantine_event, redrive

from ..support import WS, completed, eventually, job_of, submit
from ..triggers.support import age_leases, claim, frame
from .support import WebhookReceiver, put_trigger, webhook_receiver

pytestmark = pytest.mark.integration

TIMINGS = LeaseTimings(claim_interval_s=15, ping_interval_s=5, stale_after_s=15)
FEED_URL = "ws://127.0.0.1:9/feed"
KAFKA = {"kafka_resource_path": "u/alice/kafka", "topics": ["orders"], "group_id": "g"}


class FakeLag:
    """The lag the test sets, read as a Kafka trigger's; an exception makes it unreadable."""

    def __init__(self) -> None:
        self.value: int | Exception = 0

    async def read(self, store: Store, trigger: TriggerRef, row: Mapping[str, Any]) -> SourceLag:
        if isinstance(self.value, Exception):
            raise self.value
        return SourceLag("messages", self.value)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """The chat server the notices go to."""
    with webhook_receiver() as started:
        yield started


@pytest.fixture
def lag() -> FakeLag:
    """The lag of every Kafka trigger."""
    return FakeLag()


def rules_of(
    store: Store,
    receiver: WebhookReceiver,
    lag: FakeLag,
    clock: FakeClock | None = None,
    **thresholds: Any,
) -> AlertRules:
    """Rules that fire as soon as they hold, unless `thresholds` say otherwise."""
    chosen = {"trigger_error_after_s": 0, "unheld_after_s": 0, "lag_messages": 10, **thresholds}
    return AlertRules(
        store,
        AlertThresholds(**chosen),
        TIMINGS,
        lags=LagProbe(store, ttl_s=0, readers={"kafka": lag.read}),
        notifier=WebhookNotifier(receiver.url),
        clock=clock if clock is not None else FakeClock(),
    )


async def alert_rows(store: Store, alert_type: str) -> list[Row]:
    """The workspace's alerts of one type, open or not."""
    rows = await fetch_all(
        store, "list_workspace_alerts", workspace_id=WS, include_closed=True, limit=100
    )
    return [row for row in rows if row["alert_type"] == alert_type]


async def fires_once_then_clears_once(
    store: Store,
    rules: AlertRules,
    receiver: WebhookReceiver,
    rule: str,
    clear: Callable[[], Awaitable[object]],
) -> None:
    """Two passes while the condition holds, `clear`, two more: one incident, two notices."""
    fired = await rules.evaluate()
    assert [(n.rule, n.resolved) for n in fired] == [(rule, False)]
    assert await rules.evaluate() == []
    assert [row["acknowledged"] for row in await alert_rows(store, rule)] == [False]

    await clear()

    cleared = await rules.evaluate()
    assert [(n.rule, n.resolved) for n in cleared] == [(rule, True)]
    assert await rules.evaluate() == []
    assert [row["acknowledged"] for row in await alert_rows(store, rule)] == [True]
    assert receiver.texts == [
        f"[gateway] FIRING {rule}: {fired[0].message}",
        f"[gateway] RESOLVED {rule}: {fired[0].message}",
    ]


@pytest.mark.usefixtures("scripts")
async def test_a_trigger_in_error(store: Store, receiver: WebhookReceiver, lag: FakeLag) -> None:
    feed = await put_trigger(store, "websocket", "feed", url=FEED_URL)
    lease = await claim(store, feed, "gw-a")
    leases = SqlLeaseStore(store)
    await leases.ping(lease, "connection lost: refused")
    rules = rules_of(store, receiver, lag)

    await fires_once_then_clears_once(
        store, rules, receiver, TRIGGER_IN_ERROR, lambda: leases.ping(lease, None)
    )
    assert receiver.texts[0].endswith(
        f"websocket trigger {feed} is in error: connection lost: refused"
    )


@pytest.mark.usefixtures("scripts")
async def test_a_trigger_enabled_but_unheld(
    store: Store, receiver: WebhookReceiver, lag: FakeLag
) -> None:
    feed = await put_trigger(store, "websocket", "feed", url=FEED_URL)
    await claim(store, feed, "gw-gone")
    await age_leases(store, "websocket", 60)
    rules = rules_of(store, receiver, lag)

    async def taken_over() -> None:
        await SqlLeaseStore(store).claim_stale("websocket", "gw-b", TIMINGS.stale_after_s)

    await fires_once_then_clears_once(store, rules, receiver, TRIGGER_UNHELD, taken_over)


@pytest.mark.usefixtures("scripts")
async def test_a_growing_quarantine(store: Store, receiver: WebhookReceiver, lag: FakeLag) -> None:
    feed = await put_trigger(store, "websocket", "feed", url=FEED_URL)
    async with store.transaction() as tx:
        event_id = await quarantine_event(tx, feed, frame("late", "frame-1"), "script not found")
    assert event_id is not None
    rules = rules_of(store, receiver, lag)

    async def redriven() -> None:
        assert (await redrive(store, WS, event_id)).job_id is not None

    await fires_once_then_clears_once(store, rules, receiver, QUARANTINE_GROWING, redriven)


@pytest.mark.usefixtures("scripts")
async def test_a_lag_over_its_threshold(
    store: Store, receiver: WebhookReceiver, lag: FakeLag
) -> None:
    orders = await put_trigger(store, "kafka", "orders", **KAFKA)
    await SqlLeaseStore(store).ping(await claim(store, orders, "gw-a"), None)
    lag.value = 50
    rules = rules_of(store, receiver, lag)

    async def caught_up() -> None:
        lag.value = 3

    await fires_once_then_clears_once(store, rules, receiver, SOURCE_LAG, caught_up)
    assert "is 50 messages behind its source (over 10)" in receiver.texts[0]


@pytest.mark.usefixtures("scripts")
async def test_a_job_failed_after_its_retries(
    store: Store, settings: Settings, receiver: WebhookReceiver, lag: FakeLag
) -> None:
    executor = Executor(store, settings)
    await executor.start()
    try:
        retried = job_of("flaky", retry=RetryPolicy.parse({"constant": {"attempts": 1}}))
        (failed,) = await submit(store, retried)
        assert (await completed(store, failed))["success"] is False
        rules = rules_of(store, receiver, lag)

        async def succeeded_later() -> None:
            (fine,) = await submit(store, job_of("flaky", args={"fail": False}))
            assert (await completed(store, fine))["success"] is True

        await fires_once_then_clears_once(store, rules, receiver, JOB_FAILURES, succeeded_later)
    finally:
        await executor.stop(grace_s=1.0)
    assert "script f/t/flaky in test: 1 job(s) failed after their retries" in receiver.texts[0]
    # The queue's own record of the failure is closed with the incident.
    assert [row["acknowledged"] for row in await alert_rows(store, "job_failed")] == [True]


@pytest.mark.usefixtures("scripts")
async def test_a_condition_fires_only_once_it_lasted(
    store: Store, receiver: WebhookReceiver, lag: FakeLag
) -> None:
    feed = await put_trigger(store, "websocket", "feed", url=FEED_URL)
    await SqlLeaseStore(store).ping(await claim(store, feed, "gw-a"), "cannot connect")
    clock = FakeClock()
    rules = rules_of(store, receiver, lag, clock, trigger_error_after_s=60)

    assert await rules.evaluate() == []
    await clock.advance(59)
    assert await rules.evaluate() == []
    await clock.advance(1)
    assert [n.rule for n in await rules.evaluate()] == [TRIGGER_IN_ERROR]


@pytest.mark.usefixtures("scripts")
async def test_instances_share_one_incident_and_an_acknowledged_one_stays_quiet(
    store: Store, receiver: WebhookReceiver, lag: FakeLag
) -> None:
    feed = await put_trigger(store, "websocket", "feed", url=FEED_URL)
    lease = await claim(store, feed, "gw-a")
    leases = SqlLeaseStore(store)
    await leases.ping(lease, "cannot connect")
    first, second = rules_of(store, receiver, lag), rules_of(store, receiver, lag)

    assert len(await first.evaluate()) == 1
    assert await second.evaluate() == []
    (incident,) = await alert_rows(store, TRIGGER_IN_ERROR)
    async with store.transaction() as tx:
        assert await tx.fetch_one("acknowledge_alert", workspace_id=WS, id=incident["id"])
    assert await first.evaluate() == []
    assert await second.evaluate() == []

    # Closed by a person, the incident has nothing left to clear; the next one fires anew.
    await leases.ping(lease, None)
    assert await first.evaluate() == []
    assert await second.evaluate() == []
    await leases.ping(lease, "cannot connect again")
    assert [n.resolved for n in await second.evaluate()] == [False]
    assert await first.evaluate() == []
    assert len(receiver.texts) == 2


@pytest.mark.usefixtures("scripts")
async def test_an_unknown_lag_neither_fires_nor_clears(
    store: Store, receiver: WebhookReceiver, lag: FakeLag
) -> None:
    orders = await put_trigger(store, "kafka", "orders", **KAFKA)
    await SqlLeaseStore(store).ping(await claim(store, orders, "gw-a"), None)
    rules = rules_of(store, receiver, lag)
    lag.value = ConnectionRefusedError("broker down")
    assert await rules.evaluate() == []
    lag.value = 50
    assert [n.resolved for n in await rules.evaluate()] == [False]
    lag.value = ConnectionRefusedError("broker down")
    assert await rules.evaluate() == []
    lag.value = 0
    assert [n.resolved for n in await rules.evaluate()] == [True]


@pytest.fixture
async def running_rules(
    store: Store, receiver: WebhookReceiver, lag: FakeLag
) -> AsyncIterator[tuple[AlertRules, FakeClock]]:
    """Rules evaluated every 30 s of a virtual clock, stopped at the end."""
    clock = FakeClock()
    rules = rules_of(store, receiver, lag, clock, interval_s=30)
    await rules.start()
    yield rules, clock
    await rules.stop()


@pytest.mark.usefixtures("scripts")
async def test_the_rules_are_evaluated_every_interval(
    store: Store, running_rules: tuple[AlertRules, FakeClock]
) -> None:
    _, clock = running_rules
    feed = await put_trigger(store, "websocket", "feed", url=FEED_URL)
    await SqlLeaseStore(store).ping(await claim(store, feed, "gw-a"), "cannot connect")

    async def raised() -> list[Row]:
        return await alert_rows(store, TRIGGER_IN_ERROR)

    assert await raised() == []
    await clock.advance(30)
    await eventually(raised)

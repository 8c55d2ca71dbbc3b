"""The delivery side of the supervisor: connect, submit, ack, and what happens on failure."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import World


async def test_connect_failure_keeps_the_lease_writes_the_error_and_backs_off(
    world: World,
) -> None:
    trigger, source = world.add_trigger("orders")
    source.go_offline(ConnectionRefusedError("broker down"))
    supervisor = world.supervisor("gw-a")
    await supervisor.start()
    await world.settle()
    assert source.connect_attempts == 1

    await world.advance(world.timings.ping_interval_s)
    row = world.store.row(trigger)
    assert row["server_id"] == "gw-a"
    assert "broker down" in row["error"]
    assert "retrying in" in row["error"]

    await world.advance(120)
    attempts = world.connect_times[trigger]
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert len(gaps) > 6  # enough to reach the cap
    for attempt, gap in enumerate(gaps):
        ceiling = min(world.timings.backoff_cap_s, world.timings.backoff_base_s * 2**attempt)
        assert ceiling / 2 <= gap < ceiling
    assert supervisor.running() == {trigger}


async def test_each_connection_incident_raises_one_alert_cleared_on_reconnect(
    world: World,
) -> None:
    trigger, source = world.add_trigger("orders")
    source.go_offline(ConnectionRefusedError("broker down"))
    supervisor = world.supervisor("gw-a")
    await supervisor.start()

    await world.advance(60)
    assert source.connect_attempts > 3
    assert len(world.alerts.raised) == 1
    assert world.alerts.raised[0][0] == trigger
    assert "broker down" in world.alerts.raised[0][1]

    source.go_online()
    await world.advance(world.timings.backoff_cap_s)
    assert world.consuming(trigger)
    assert world.alerts.cleared == [trigger]
    assert world.alerts.open == set()
    await world.advance(world.timings.ping_interval_s)
    assert world.store.row(trigger)["error"] is None

    # A new incident (the connection drops while consuming) raises a new alert, once, and its
    # backoff starts over from the base delay.
    dropped_at = world.clock.monotonic()
    source.go_offline(ConnectionResetError("connection reset"))
    await world.advance(60)
    assert len(world.alerts.raised) == 2
    assert "connection reset" in world.alerts.raised[1][1]
    assert world.alerts.open == {trigger}
    first_retry = min(t for t in world.connect_times[trigger] if t > dropped_at)
    assert first_retry - dropped_at < world.timings.backoff_base_s


async def test_submit_failure_nacks_and_the_event_is_redelivered(world: World) -> None:
    trigger, source = world.add_trigger("orders")
    supervisor = world.supervisor("gw-a")
    await supervisor.start()
    await world.settle()
    world.sink.fail(RuntimeError("insert failed"))

    source.publish(world.event(1))
    await world.settle()
    assert source.nacked == [world.event(1)]
    assert source.acked == []
    assert world.sink.submitted == []

    await world.advance(world.timings.ping_interval_s)
    assert "cannot submit jobs: RuntimeError: insert failed" in world.store.row(trigger)["error"]
    assert all(event == world.event(1) for event in source.nacked)
    assert source.acked == []

    world.sink.recover()
    await world.advance(world.timings.backoff_cap_s)
    assert world.sink.events == [world.event(1)]
    assert source.acked == [world.event(1)]
    await world.advance(world.timings.ping_interval_s)
    assert world.store.row(trigger)["error"] is None
    assert world.alerts.raised == []


async def test_nothing_is_acked_before_submit_returns(world: World) -> None:
    _, source = world.add_trigger("orders")
    supervisor = world.supervisor("gw-a")
    await supervisor.start()
    world.sink.pause()

    source.publish(world.event(1))
    await world.settle()
    assert source.acked == []

    world.sink.resume()
    await world.settle()
    assert world.sink.events == [world.event(1)]
    assert source.acked == [world.event(1)]


async def test_lease_lost_on_submit_stops_the_runner_without_acking(world: World) -> None:
    trigger, source = world.add_trigger("orders")
    supervisor = world.supervisor("gw-a")
    await supervisor.start()
    await world.settle()
    # Another instance took the trigger; our heartbeat has not noticed yet, the fence does.
    world.store.write(trigger, server_id="gw-b")

    source.publish(world.event(1))
    await world.settle()

    assert supervisor.running() == frozenset()
    assert not world.consuming(trigger)
    assert world.sink.submitted == []
    assert source.acked == []
    assert source.pending == (world.event(1),)  # left to the new holder
    assert world.store.row(trigger)["server_id"] == "gw-b"  # nothing released


async def test_one_failing_trigger_does_not_affect_another(world: World) -> None:
    broken, broken_source = world.add_trigger("orders")
    healthy, healthy_source = world.add_trigger("payments")
    supervisor = world.supervisor("gw-a")
    await supervisor.start()
    await world.settle()

    broken_source.go_offline(ConnectionResetError("connection reset"))
    broken_source.publish(world.event(1))
    healthy_source.publish(world.event(2), world.event(3))
    await world.advance(30)
    healthy_source.publish(world.event(4))
    await world.settle()

    assert healthy_source.acked == [world.event(2), world.event(3), world.event(4)]
    assert broken_source.acked == []
    assert broken_source.pending == (world.event(1),)
    assert "connection reset" in world.store.row(broken)["error"]
    assert world.store.row(healthy)["error"] is None
    assert [trigger for trigger, _ in world.alerts.raised] == [broken]
    assert supervisor.running() == {broken, healthy}


async def test_acked_events_are_exactly_the_submitted_ones(world: World) -> None:
    trigger, source = world.add_trigger("orders", batch_size=2)
    supervisor = world.supervisor("gw-a")
    await supervisor.start()
    await world.settle()
    events = [world.event(n) for n in range(1, 7)]

    source.publish(*events[:3])  # two batches
    await world.settle()

    world.sink.fail(RuntimeError("insert failed"))  # nacked, then redelivered
    source.publish(events[3])
    await world.settle()
    world.sink.recover()
    await world.advance(world.timings.backoff_cap_s)

    source.go_offline()  # the connection drops; the event waits for the reconnect
    source.publish(events[4])
    await world.settle()
    source.go_online()
    await world.advance(world.timings.backoff_cap_s)

    world.sink.pause()  # the lease is taken while a submit is in flight
    source.publish(events[5])
    await world.settle()
    world.store.write(trigger, server_id="gw-b")
    world.sink.resume()
    await world.settle()

    assert [len(batch) for _, batch in world.sink.submitted[:2]] == [2, 1]
    assert world.sink.events == events[:5]
    assert source.acked == events[:5]
    assert source.pending == (events[5],)

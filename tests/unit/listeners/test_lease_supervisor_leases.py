"""The lease side of the supervisor: claim, heartbeat, lose, expire, release."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import pytest

from gateway.listeners.lease import CONNECTING

if TYPE_CHECKING:
    from conftest import World


async def test_start_claims_every_consumable_trigger_at_once(world: World) -> None:
    enabled, _ = world.add_trigger("orders")
    suspended, _ = world.add_trigger("refunds", mode="suspended")
    disabled, _ = world.add_trigger("audit", mode="disabled")
    supervisor = world.supervisor("gw-a")

    await supervisor.start()

    assert supervisor.running() == {enabled, suspended}
    assert world.store.row(enabled)["server_id"] == "gw-a"
    assert world.store.row(enabled)["error"] == CONNECTING
    assert world.store.row(disabled)["server_id"] is None
    task_names = {task.get_name() for task in asyncio.all_tasks()}
    assert "listener:memory:acme/u/ops/orders" in task_names


async def test_healthy_listener_reports_no_error_at_next_ping(world: World) -> None:
    trigger, source = world.add_trigger("orders")
    supervisor = world.supervisor("gw-a")
    await supervisor.start()
    await world.settle()
    assert source.connect_attempts == 1
    assert world.store.row(trigger)["error"] == CONNECTING

    await world.advance(world.timings.ping_interval_s)

    assert world.store.row(trigger)["error"] is None


async def test_claimed_trigger_is_not_claimed_by_another_instance_while_pings_are_fresh(
    world: World,
) -> None:
    trigger, _ = world.add_trigger("orders")
    first, second = world.supervisor("gw-a"), world.supervisor("gw-b")
    await first.start()
    await second.start()

    for _ in range(6):
        await world.advance(world.timings.claim_interval_s)

    assert first.running() == {trigger}
    assert second.running() == frozenset()
    assert world.store.row(trigger)["server_id"] == "gw-a"


async def test_lease_of_a_dead_instance_is_taken_over_once_stale(world: World) -> None:
    trigger, source = world.add_trigger("orders")
    # An instance claimed it at t=0 and died without releasing it.
    world.store.write(trigger, server_id="gw-dead", last_server_ping=0.0)
    supervisor = world.supervisor("gw-b")
    await supervisor.start()
    source.publish(world.event(1))

    await world.advance(world.timings.stale_after_s)
    assert supervisor.running() == frozenset()  # not stale yet: pinged exactly 15 s ago

    await world.advance(world.timings.claim_interval_s)
    assert supervisor.running() == {trigger}
    assert world.sink.events == [world.event(1)]
    assert world.sink.submitted[0][0].server_id == "gw-b"


async def test_partitioned_instance_stops_before_another_takes_over(world: World) -> None:
    trigger, source = world.add_trigger("orders")
    link = world.partition()
    first = world.supervisor("gw-a", store=link)
    second = world.supervisor("gw-b")
    await first.start()
    await second.start()
    await world.settle()
    link.cut = True

    await world.advance(world.timings.stale_after_s - world.timings.ping_interval_s)
    assert first.running() == {trigger}
    assert world.consuming(trigger)

    await world.advance(world.timings.ping_interval_s)
    assert first.running() == frozenset()
    assert not world.consuming(trigger)

    source.publish(world.event(1))
    await world.advance(world.timings.claim_interval_s)
    assert second.running() == {trigger}
    assert world.sink.events == [world.event(1)]
    assert world.sink.submitted[0][0].server_id == "gw-b"


async def test_lost_database_stops_consumption_after_the_staleness_window(world: World) -> None:
    trigger, source = world.add_trigger("orders")
    supervisor = world.supervisor("gw-a")
    await supervisor.start()
    await world.settle()
    world.store.go_offline()

    await world.advance(world.timings.stale_after_s - world.timings.ping_interval_s)
    assert supervisor.running() == {trigger}

    await world.advance(world.timings.ping_interval_s)
    assert supervisor.running() == frozenset()
    assert not world.consuming(trigger)

    # Once the database is back, the stale lease is claimed again and consumption resumes.
    world.store.go_online()
    source.publish(world.event(1))
    await world.advance(world.timings.claim_interval_s)
    assert supervisor.running() == {trigger}
    assert world.sink.events == [world.event(1)]
    assert source.acked == [world.event(1)]


async def test_hung_ping_does_not_hide_an_expired_lease(world: World) -> None:
    trigger, _ = world.add_trigger("orders")
    supervisor = world.supervisor("gw-a")
    await supervisor.start()
    await world.settle()
    world.store.go_offline(hang=True)

    await world.advance(world.timings.stale_after_s - world.timings.ping_interval_s)
    assert supervisor.running() == {trigger}

    await world.advance(world.timings.ping_interval_s)
    assert supervisor.running() == frozenset()
    assert not world.consuming(trigger)


async def test_claim_that_rewins_a_running_trigger_keeps_its_one_listener(world: World) -> None:
    trigger, source = world.add_trigger("orders")
    link = world.partition()
    supervisor = world.supervisor("gw-a", store=link)
    await supervisor.start()
    await world.advance(world.timings.claim_interval_s - 1)
    # The database sees our lease as stale (our pings landed late), so our next pass re-wins it.
    world.store.write(trigger, last_server_ping=-100.0)

    await world.advance(1)

    assert [lease.trigger for lease in link.won] == [trigger, trigger]
    assert len(world.listeners[trigger]) == 1
    source.publish(world.event(1))
    await world.settle()
    assert source.acked == [world.event(1)]


@pytest.mark.parametrize("change", ["edited", "disabled", "deleted", "taken"])
async def test_ping_that_matches_no_row_stops_the_listener_within_one_ping(
    world: World, change: str
) -> None:
    trigger, _ = world.add_trigger("orders")
    supervisor = world.supervisor("gw-a")
    await supervisor.start()
    await world.settle()
    assert world.consuming(trigger)
    match change:
        case "edited":
            world.store.edit(trigger, topic="orders-v2")
        case "disabled":
            world.store.edit(trigger, mode="disabled")
        case "deleted":
            world.store.delete(trigger)
        case "taken":
            world.store.write(trigger, server_id="gw-b")

    await world.advance(world.timings.ping_interval_s)

    assert supervisor.running() == frozenset()
    assert not world.consuming(trigger)


async def test_edited_trigger_is_claimed_again_at_once_with_its_new_row(world: World) -> None:
    trigger, source = world.add_trigger("orders")
    supervisor = world.supervisor("gw-a")
    await supervisor.start()
    await world.advance(1)
    world.store.edit(trigger, topic="orders-v2")

    await world.advance(world.timings.ping_interval_s)
    assert world.store.row(trigger)["last_server_ping"] is None  # reset for restart

    # The claim pass at t=15 takes it; without the reset the row would wait for the one at t=30.
    await world.advance(world.timings.claim_interval_s - world.timings.ping_interval_s - 1)
    assert supervisor.running() == {trigger}
    assert world.leases[trigger][-1].row["topic"] == "orders-v2"
    source.publish(world.event(1))
    await world.settle()
    assert source.acked == [world.event(1)]


async def test_disabled_trigger_is_not_claimed_again(world: World) -> None:
    trigger, _ = world.add_trigger("orders")
    supervisor = world.supervisor("gw-a")
    await supervisor.start()
    world.store.edit(trigger, mode="disabled")

    for _ in range(4):
        await world.advance(world.timings.claim_interval_s)

    assert supervisor.running() == frozenset()
    assert world.store.row(trigger)["server_id"] is None


async def test_release_on_shutdown_makes_the_trigger_claimable_at_once(world: World) -> None:
    trigger, source = world.add_trigger("orders")
    first, second = world.supervisor("gw-a"), world.supervisor("gw-b")
    await first.start()
    await world.settle()

    await first.stop(drain_timeout_s=5)

    assert first.running() == frozenset()
    assert not world.consuming(trigger)
    assert world.store.row(trigger)["server_id"] is None
    assert world.store.row(trigger)["last_server_ping"] is None
    await second.start()
    assert second.running() == {trigger}
    source.publish(world.event(1))
    await world.settle()
    assert world.sink.submitted[0][0].server_id == "gw-b"


async def test_shutdown_finishes_the_batch_in_hand_before_releasing(world: World) -> None:
    trigger, source = world.add_trigger("orders")
    supervisor = world.supervisor("gw-a")
    await supervisor.start()
    world.sink.pause()
    source.publish(world.event(1))
    await world.settle()

    stopping = asyncio.create_task(supervisor.stop(drain_timeout_s=5))
    await world.settle()
    assert world.store.row(trigger)["server_id"] == "gw-a"  # still draining
    world.sink.resume()
    await stopping

    assert source.acked == [world.event(1)]
    assert world.store.row(trigger)["server_id"] is None
    assert not world.consuming(trigger)


async def test_shutdown_cancels_a_batch_that_outlives_the_drain_timeout(world: World) -> None:
    trigger, source = world.add_trigger("orders")
    supervisor = world.supervisor("gw-a")
    await supervisor.start()
    world.sink.pause()
    source.publish(world.event(1))
    await world.settle()

    stopping = asyncio.create_task(supervisor.stop(drain_timeout_s=5))
    await world.advance(5)
    await stopping

    assert source.acked == []
    assert source.pending == (world.event(1),)  # back at the source for the next holder
    assert world.store.row(trigger)["server_id"] is None
    assert not world.consuming(trigger)


async def test_failed_claim_pass_is_retried_at_the_next_tick(world: World) -> None:
    trigger, _ = world.add_trigger("orders")
    supervisor = world.supervisor("gw-a")
    world.store.go_offline()
    await supervisor.start()
    assert supervisor.running() == frozenset()

    world.store.go_online()
    await world.advance(world.timings.claim_interval_s)

    assert supervisor.running() == {trigger}


async def test_one_kinds_failing_claim_does_not_stop_another_kinds(world: World) -> None:
    broken, _ = world.add_trigger("orders", kind="kafka")
    healthy, _ = world.add_trigger("events", kind="nats")
    link = world.partition()
    link.failing_kinds.add("kafka")
    supervisor = world.supervisor("gw-a", store=link, kinds=("kafka", "nats"))

    await supervisor.start()
    assert supervisor.running() == {healthy}

    link.failing_kinds.clear()
    await world.advance(world.timings.claim_interval_s)
    assert supervisor.running() == {broken, healthy}


async def test_lifecycle_is_logged_with_action_trigger_and_kind(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.add_trigger("orders")
    supervisor = world.supervisor("gw-a")
    caplog.set_level(logging.INFO, logger="gateway.listeners.supervisor")

    await supervisor.start()
    await world.settle()
    await supervisor.stop(drain_timeout_s=0)

    trigger_lines = [
        (record.action, record.trigger, record.kind)  # type: ignore[attr-defined]
        for record in caplog.records
        if hasattr(record, "trigger")
    ]
    assert trigger_lines == [
        ("lease_claimed", "acme/u/ops/orders", "memory"),
        ("listener_connected", "acme/u/ops/orders", "memory"),
        ("lease_released", "acme/u/ops/orders", "memory"),
    ]

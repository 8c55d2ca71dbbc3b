"""The in-memory twins keep the seams' contracts (the SQL store is held to the same)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from gateway.listeners.base import Batch
from gateway.listeners.lease import CONNECTING, LeaseLost, TriggerRef
from gateway.listeners.memory import MemoryListener, RecordingAlertSink, RecordingJobSink

if TYPE_CHECKING:
    from conftest import World

STALE_S = 15.0


async def test_claim_takes_unheld_consumable_triggers_of_its_kind(world: World) -> None:
    enabled, _ = world.add_trigger("orders")
    suspended, _ = world.add_trigger("refunds", mode="suspended")
    world.add_trigger("audit", mode="disabled")
    world.add_trigger("events", kind="nats")
    await world.clock.advance(2)

    won = await world.store.claim_stale("memory", "gw-a", STALE_S)

    assert {lease.trigger for lease in won} == {enabled, suspended}
    for lease in won:
        assert lease.server_id == "gw-a"
        assert lease.row["topic"] == lease.trigger.path.rsplit("/", 1)[1]
        row = world.store.row(lease.trigger)
        assert (row["server_id"], row["last_server_ping"], row["error"]) == ("gw-a", 2, CONNECTING)


async def test_claim_leaves_a_lease_until_it_is_strictly_older_than_the_window(
    world: World,
) -> None:
    trigger, _ = world.add_trigger("orders")
    await world.store.claim_stale("memory", "gw-a", STALE_S)

    await world.clock.advance(STALE_S)
    assert await world.store.claim_stale("memory", "gw-b", STALE_S) == []

    await world.clock.advance(0.001)
    [lease] = await world.store.claim_stale("memory", "gw-b", STALE_S)
    assert lease.trigger == trigger
    assert world.store.row(trigger)["server_id"] == "gw-b"


async def test_ping_renews_and_writes_the_status_while_the_row_names_the_holder(
    world: World,
) -> None:
    trigger, _ = world.add_trigger("orders")
    [lease] = await world.store.claim_stale("memory", "gw-a", STALE_S)
    await world.clock.advance(5)

    assert await world.store.ping(lease, None)
    assert world.store.row(trigger)["last_server_ping"] == 5
    assert world.store.row(trigger)["error"] is None
    assert await world.store.ping(lease, "connection lost")
    assert world.store.row(trigger)["error"] == "connection lost"


@pytest.mark.parametrize("change", ["edited", "disabled", "deleted", "taken"])
async def test_ping_fails_once_the_row_no_longer_names_the_holder(
    world: World, change: str
) -> None:
    trigger, _ = world.add_trigger("orders")
    [lease] = await world.store.claim_stale("memory", "gw-a", STALE_S)
    match change:
        case "edited":
            world.store.edit(trigger, topic="orders-v2")
        case "disabled":
            world.store.edit(trigger, mode="disabled")
        case "deleted":
            world.store.delete(trigger)
        case "taken":
            world.store.write(trigger, server_id="gw-b")

    assert not await world.store.ping(lease, None)
    assert not await world.store.holds(lease)


async def test_reset_for_restart_only_frees_a_row_nobody_holds(world: World) -> None:
    edited, _ = world.add_trigger("orders")
    taken, _ = world.add_trigger("payments")
    await world.store.claim_stale("memory", "gw-a", STALE_S)
    world.store.edit(edited, topic="orders-v2")
    world.store.write(taken, server_id="gw-b")

    await world.store.reset_for_restart(edited)
    await world.store.reset_for_restart(taken)

    assert world.store.row(edited)["last_server_ping"] is None
    assert world.store.row(taken)["last_server_ping"] == 0


async def test_release_frees_only_a_lease_still_held(world: World) -> None:
    trigger, _ = world.add_trigger("orders")
    [lease] = await world.store.claim_stale("memory", "gw-a", STALE_S)
    world.store.write(trigger, server_id="gw-b")

    await world.store.release(lease)
    assert world.store.row(trigger)["server_id"] == "gw-b"

    world.store.write(trigger, server_id="gw-a")
    await world.store.release(lease)
    assert world.store.row(trigger)["server_id"] is None
    assert world.store.row(trigger)["last_server_ping"] is None


async def test_offline_store_fails_or_hangs_until_back_online(world: World) -> None:
    world.add_trigger("orders")
    world.store.go_offline()
    with pytest.raises(ConnectionError):
        await world.store.claim_stale("memory", "gw-a", STALE_S)

    world.store.go_online()
    world.store.go_offline(hang=True)
    claim = asyncio.create_task(world.store.claim_stale("memory", "gw-a", STALE_S))
    await world.settle()
    assert not claim.done()

    world.store.go_online()
    assert len(await claim) == 1


async def test_source_delivers_in_batches_and_redelivers_a_nacked_batch_first(
    world: World,
) -> None:
    _, source = world.add_trigger("orders", batch_size=2)
    events = [world.event(n) for n in range(3)]
    source.publish(*events)
    listener = source.listener()
    await listener.connect()
    stream = listener.consume()

    first = await anext(stream)
    assert list(first.events) == events[:2]
    await listener.nack(first)
    await listener.nack(first)  # once only

    again = await anext(stream)
    assert list(again.events) == events[:2]
    await listener.ack(again)
    await listener.ack(again)  # once only
    assert source.acked == events[:2]
    assert source.nacked == events[:2]
    assert source.pending == (events[2],)


async def test_closing_a_listener_returns_its_unacked_batches(world: World) -> None:
    _, source = world.add_trigger("orders", batch_size=1)
    source.publish(world.event(1), world.event(2))
    listener = source.listener()
    stream = listener.consume()
    await anext(stream)

    await listener.close()
    await listener.close()

    assert source.pending == (world.event(1), world.event(2))
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_offline_source_refuses_connects_and_breaks_streams(world: World) -> None:
    _, source = world.add_trigger("orders")
    listener = source.listener()
    waiting = asyncio.create_task(_next_batch(listener))
    await world.settle()

    source.go_offline(ConnectionResetError("reset"))

    with pytest.raises(ConnectionResetError):
        await waiting
    with pytest.raises(ConnectionResetError):
        await source.listener().connect()
    source.go_online()
    await source.listener().connect()
    assert source.connect_attempts == 2


async def test_fenced_sink_refuses_a_lease_no_longer_held(world: World) -> None:
    trigger, _ = world.add_trigger("orders")
    [lease] = await world.store.claim_stale("memory", "gw-a", STALE_S)
    sink = RecordingJobSink(world.store)

    job_ids = await sink.submit(lease, [world.event(1), world.event(2)])
    world.store.write(trigger, server_id="gw-b")
    with pytest.raises(LeaseLost, match="no longer held by gw-a"):
        await sink.submit(lease, [world.event(3)])

    assert len(set(job_ids)) == 2
    assert sink.events == [world.event(1), world.event(2)]


async def test_alert_sink_knows_which_alerts_are_open() -> None:
    alerts = RecordingAlertSink()
    orders = TriggerRef("memory", "acme", "u/ops/orders")
    payments = TriggerRef("memory", "acme", "u/ops/payments")

    await alerts.raise_alert(orders, "down")
    await alerts.raise_alert(payments, "down")
    await alerts.clear_alert(orders)

    assert alerts.open == {payments}


async def _next_batch(listener: MemoryListener) -> Batch:
    return await anext(listener.consume())

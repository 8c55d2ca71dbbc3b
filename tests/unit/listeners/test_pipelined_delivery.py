"""Pipelined delivery: a listener that allows it has its next batch submitted while the previous
one is still being submitted; acks keep the order batches were read in, and a failed submit nacks
its batch and every later one, so that the source delivers them all again."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

from gateway.listeners.lease import Lease, LeaseLost, TriggerRef
from gateway.listeners.memory import MemoryLeaseStore, MemorySource
from gateway.listeners.supervisor import LeaseSupervisor
from gateway.triggers.event import Event

if TYPE_CHECKING:
    from conftest import World


@dataclass
class _Submit:
    events: tuple[Event, ...]
    outcome: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GatedJobSink:
    """A job sink whose submits each wait until the test lets them succeed or fail, in any
    order; fenced by the lease store like the real sink."""

    def __init__(self, store: MemoryLeaseStore) -> None:
        self.calls: list[_Submit] = []
        self._store = store

    @property
    def started(self) -> list[tuple[Event, ...]]:
        """The events of every submit begun, in the order they began."""
        return [call.events for call in self.calls]

    def succeed(self, index: int) -> None:
        """Let submit `index` (in start order) commit its jobs."""
        self.calls[index].outcome.set_result(None)

    def fail(self, index: int, error: Exception) -> None:
        """Make submit `index` raise `error`, writing nothing."""
        self.calls[index].outcome.set_exception(error)

    async def submit(self, lease: Lease, events: Sequence[Event]) -> list[UUID]:
        """Wait for the test's verdict, then check the fence."""
        call = _Submit(tuple(events))
        self.calls.append(call)
        await call.outcome
        if not await self._store.holds(lease):
            raise LeaseLost(lease.trigger, lease.server_id)
        return [uuid4() for _ in events]


async def pipelined_trigger(
    world: World, sink: GatedJobSink
) -> tuple[TriggerRef, MemorySource, LeaseSupervisor]:
    """A started supervisor consuming one trigger whose source delivers one event per batch to
    pipelined listeners (two batches in flight)."""
    trigger, _ = world.add_trigger("orders")
    source = MemorySource(batch_size=1, pipelined=True)
    supervisor = LeaseSupervisor(
        "gw-a",
        store=world.store,
        factories={trigger.kind: lambda _lease: source.listener()},
        sink=sink,
        alerts=world.alerts,
        timings=world.timings,
        clock=world.clock,
    )
    await supervisor.start()
    await world.settle()
    return trigger, source, supervisor


async def test_the_next_batch_is_submitted_before_the_previous_one_is_acked(world: World) -> None:
    sink = GatedJobSink(world.store)
    _, source, supervisor = await pipelined_trigger(world, sink)
    e1, e2, e3 = (world.event(n) for n in (1, 2, 3))

    source.publish(e1, e2, e3)
    await world.settle()
    assert sink.started == [(e1,), (e2,)]  # two in flight, the third waits for a free slot
    assert source.acked == []

    sink.succeed(0)
    await world.settle()
    assert source.acked == [e1]
    assert sink.started == [(e1,), (e2,), (e3,)]

    sink.succeed(1)
    sink.succeed(2)
    await world.settle()
    assert source.acked == [e1, e2, e3]
    await supervisor.stop(drain_timeout_s=0)


async def test_a_batch_is_acked_only_after_every_earlier_batch(world: World) -> None:
    sink = GatedJobSink(world.store)
    _, source, supervisor = await pipelined_trigger(world, sink)
    e1, e2 = world.event(1), world.event(2)

    source.publish(e1, e2)
    await world.settle()
    sink.succeed(1)  # the later batch's jobs commit first
    await world.settle()
    assert source.acked == []

    sink.succeed(0)
    await world.settle()
    assert source.acked == [e1, e2]
    await supervisor.stop(drain_timeout_s=0)


async def test_a_failed_submit_nacks_its_batch_and_every_later_one(world: World) -> None:
    sink = GatedJobSink(world.store)
    _, source, supervisor = await pipelined_trigger(world, sink)
    e1, e2 = world.event(1), world.event(2)

    source.publish(e1, e2)
    await world.settle()
    sink.succeed(1)  # committed, but read after a batch that fails: never acked
    sink.fail(0, RuntimeError("insert failed"))
    await world.settle()
    assert source.acked == []
    assert source.nacked == [e2, e1]  # latest first ...
    assert source.pending == (e1, e2)  # ... so the source rewinds to the earliest

    await world.advance(world.timings.backoff_cap_s)  # redelivered after the backoff
    assert sink.started[2:] == [(e1,), (e2,)]
    sink.succeed(2)
    sink.succeed(3)
    await world.settle()
    assert source.acked == [e1, e2]
    await supervisor.stop(drain_timeout_s=0)


async def test_a_lease_lost_in_flight_stops_the_runner_and_acks_nothing_after_it(
    world: World,
) -> None:
    sink = GatedJobSink(world.store)
    trigger, source, supervisor = await pipelined_trigger(world, sink)
    e1, e2, e3 = (world.event(n) for n in (1, 2, 3))

    source.publish(e1, e2, e3)
    await world.settle()
    sink.succeed(0)
    await world.settle()
    assert source.acked == [e1]
    world.store.write(trigger, server_id="gw-b")  # taken over while e2 and e3 are in flight
    sink.succeed(1)
    sink.succeed(2)
    await world.settle()

    assert supervisor.running() == frozenset()
    assert source.acked == [e1]
    assert source.pending == (e2, e3)  # left, in order, to the new holder
    await supervisor.stop(drain_timeout_s=0)


async def test_stopping_settles_the_batches_in_flight_reads_no_more_and_releases(
    world: World,
) -> None:
    sink = GatedJobSink(world.store)
    trigger, source, supervisor = await pipelined_trigger(world, sink)
    e1, e2, e3 = (world.event(n) for n in (1, 2, 3))
    source.publish(e1, e2, e3)
    await world.settle()

    stopping = asyncio.create_task(supervisor.stop(drain_timeout_s=world.timings.stale_after_s))
    await world.settle()
    sink.succeed(0)
    sink.succeed(1)
    await world.settle()
    await stopping

    assert source.acked == [e1, e2]
    assert source.pending == (e3,)
    assert sink.started == [(e1,), (e2,)]
    assert world.store.row(trigger)["server_id"] is None

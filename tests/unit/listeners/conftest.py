"""A world of in-memory triggers, sources and supervisors on a virtual clock."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator

import pytest

from gateway.clock import FakeClock
from gateway.listeners.lease import Lease, LeaseStore, TriggerRef
from gateway.listeners.memory import (
    MemoryLeaseStore,
    MemoryListener,
    MemorySource,
    RecordingAlertSink,
    RecordingJobSink,
)
from gateway.listeners.supervisor import LeaseSupervisor, LeaseTimings
from gateway.triggers.event import Event

KIND = "memory"
TIMINGS = LeaseTimings(
    claim_interval_s=15, ping_interval_s=5, stale_after_s=15, backoff_base_s=1, backoff_cap_s=8
)


class PartitionedStore:
    """One instance's connection to a shared store, which can be cut without touching others."""

    def __init__(self, inner: MemoryLeaseStore) -> None:
        self.inner = inner
        self.cut = False
        self.failing_kinds: set[str] = set()
        self.won: list[Lease] = []

    async def claim_stale(self, kind: str, server_id: str, stale_after_s: float) -> list[Lease]:
        self._check()
        if kind in self.failing_kinds:
            raise ConnectionError(f"claim query for {kind} failed")
        won = await self.inner.claim_stale(kind, server_id, stale_after_s)
        self.won.extend(won)
        return won

    async def ping(self, lease: Lease, status: str | None) -> bool:
        self._check()
        return await self.inner.ping(lease, status)

    async def reset_for_restart(self, trigger: TriggerRef) -> None:
        self._check()
        await self.inner.reset_for_restart(trigger)

    async def release(self, lease: Lease) -> None:
        self._check()
        await self.inner.release(lease)

    def _check(self) -> None:
        if self.cut:
            raise ConnectionError("network partition")


class World:
    """Triggers in one shared store, their sources, and the supervisors that compete for them."""

    timings = TIMINGS

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.store = MemoryLeaseStore(self.clock)
        self.sink = RecordingJobSink(self.store)
        self.alerts = RecordingAlertSink()
        self.sources: dict[TriggerRef, MemorySource] = {}
        self.listeners: dict[TriggerRef, list[MemoryListener]] = defaultdict(list)
        self.leases: dict[TriggerRef, list[Lease]] = defaultdict(list)
        self.connect_times: dict[TriggerRef, list[float]] = defaultdict(list)
        self._supervisors: list[LeaseSupervisor] = []

    def add_trigger(
        self, name: str, *, kind: str = KIND, mode: str = "enabled", batch_size: int = 10
    ) -> tuple[TriggerRef, MemorySource]:
        """A trigger row and the source it listens to."""
        trigger = TriggerRef(kind, "acme", f"u/ops/{name}")
        self.store.add(trigger, mode=mode, script_path=f"f/jobs/{name}", topic=name)
        self.sources[trigger] = MemorySource(batch_size=batch_size)
        return trigger, self.sources[trigger]

    def supervisor(
        self, server_id: str, *, store: LeaseStore | None = None, kinds: tuple[str, ...] = (KIND,)
    ) -> LeaseSupervisor:
        """A supervisor on this world's sink, alerts and clock."""
        supervisor = LeaseSupervisor(
            server_id,
            store=store if store is not None else self.store,
            factories=dict.fromkeys(kinds, self._listen),
            sink=self.sink,
            alerts=self.alerts,
            timings=TIMINGS,
            clock=self.clock,
        )
        self._supervisors.append(supervisor)
        return supervisor

    def partition(self) -> PartitionedStore:
        """A connection to the shared store that a test can cut for one instance."""
        return PartitionedStore(self.store)

    @staticmethod
    def event(n: int) -> Event:
        """A distinct event; equal only to another `event(n)`."""
        return Event(
            kind=KIND,
            payload={"n": n},
            info={"offset": n},
            dedup_key=f"msg-{n}",
            raw=f'{{"n": {n}}}'.encode(),
        )

    def consuming(self, trigger: TriggerRef) -> bool:
        """Whether some listener of the trigger is open."""
        return any(not listener.closed for listener in self.listeners[trigger])

    async def advance(self, seconds: float) -> None:
        """Move virtual time forward."""
        await self.clock.advance(seconds)

    async def settle(self) -> None:
        """Let every task run until it waits."""
        await self.clock.settle()

    async def shut_down(self) -> None:
        """Stop every supervisor, with every seam reachable again."""
        self.store.go_online()
        self.sink.resume()
        for supervisor in self._supervisors:
            await supervisor.stop(drain_timeout_s=0)

    def _listen(self, lease: Lease) -> MemoryListener:
        trigger = lease.trigger
        self.leases[trigger].append(lease)
        self.connect_times[trigger].append(self.clock.monotonic())
        listener = self.sources[trigger].listener()
        self.listeners[trigger].append(listener)
        return listener


@pytest.fixture
async def world() -> AsyncIterator[World]:
    """A fresh world, shut down after the test."""
    world = World()
    yield world
    await world.shut_down()

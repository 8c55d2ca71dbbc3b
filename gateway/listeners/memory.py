"""In-memory twins of the listener seams: unit-test fixtures and the reference for contract tests.

- `MemoryLeaseStore` keeps the lease protocol over a dict of trigger rows, with a `Clock` playing
  the database clock; `edit`, `delete` and `write` play the management API and other instances.
- `MemorySource` is a source that tests publish events to; its `MemoryListener`s consume them in
  batches (`PipelinedMemoryListener`s, with several batches in flight, if it is `pipelined`).
  A nacked batch, and any batch still unacked when its listener closes, goes back to the front
  of the queue and is delivered again, as a broker redelivers.
- `RecordingJobSink` and `RecordingAlertSink` record what they are given.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter, deque
from collections.abc import AsyncIterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar
from uuid import UUID, uuid4

from gateway.clock import Clock
from gateway.listeners.base import Batch
from gateway.listeners.lease import CONNECTING, LEASED_MODES, Lease, LeaseLost, TriggerRef
from gateway.triggers.event import Event


class MemoryLeaseStore:
    """A `LeaseStore` over trigger rows held in a dict, with `clock` as the database clock.

    Rows carry the lease columns (`mode`, `server_id`, `last_server_ping`, `error`) beside any
    config columns a test gives. `go_offline` makes the store unreachable, as a lost database.
    """

    def __init__(self, clock: Clock, rng: random.Random | None = None) -> None:
        self._clock = clock
        self._rng = rng if rng is not None else random.Random(0)
        self._rows: dict[TriggerRef, dict[str, Any]] = {}
        self._failing = False
        self._reachable = asyncio.Event()
        self._reachable.set()

    def add(self, trigger: TriggerRef, *, mode: str = "enabled", **columns: Any) -> None:
        """Insert a trigger row, unclaimed, as the management API's create does."""
        self._rows[trigger] = {
            "workspace_id": trigger.workspace_id,
            "path": trigger.path,
            "mode": mode,
            "server_id": None,
            "last_server_ping": None,
            "error": None,
            **columns,
        }

    def edit(self, trigger: TriggerRef, **columns: Any) -> None:
        """Update a row as the management API does: `server_id` and `error` are cleared too."""
        self.write(trigger, **columns, server_id=None, error=None)

    def write(self, trigger: TriggerRef, **columns: Any) -> None:
        """Overwrite columns with no side effect, as a raw UPDATE (another instance, say) does."""
        self._rows[trigger].update(columns)

    def delete(self, trigger: TriggerRef) -> None:
        """Delete the row."""
        del self._rows[trigger]

    def row(self, trigger: TriggerRef) -> Mapping[str, Any]:
        """A snapshot of the row."""
        return MappingProxyType(dict(self._rows[trigger]))

    def go_offline(self, *, hang: bool = False) -> None:
        """Make every call raise `ConnectionError`, or with `hang` block, until `go_online`."""
        if hang:
            self._reachable.clear()
        else:
            self._failing = True

    def go_online(self) -> None:
        """Make the store reachable again; blocked calls proceed."""
        self._failing = False
        self._reachable.set()

    async def holds(self, lease: Lease) -> bool:
        """The fence a job insert checks: whether the row still names the lease's holder."""
        await self._reach()
        row = self._rows.get(lease.trigger)
        return row is not None and _held_by(row, lease.server_id)

    async def claim_stale(self, kind: str, server_id: str, stale_after_s: float) -> list[Lease]:
        """Claim the `kind` rows nobody holds, in shuffled order."""
        await self._reach()
        now = self._clock.monotonic()
        candidates = [
            trigger
            for trigger, row in self._rows.items()
            if trigger.kind == kind
            and row["mode"] in LEASED_MODES
            and (row["last_server_ping"] is None or row["last_server_ping"] < now - stale_after_s)
        ]
        self._rng.shuffle(candidates)
        won = []
        # Nothing awaits between the select and the updates, so every candidate is won; the SQL
        # store re-checks the condition in each UPDATE and may lose some to other instances.
        for trigger in candidates:
            row = self._rows[trigger]
            row.update(server_id=server_id, last_server_ping=now, error=CONNECTING)
            won.append(Lease(trigger, server_id, MappingProxyType(dict(row))))
        return won

    async def ping(self, lease: Lease, status: str | None) -> bool:
        """Renew the lease and write `status`; False when the row no longer names the holder."""
        await self._reach()
        row = self._rows.get(lease.trigger)
        if row is None or not _held_by(row, lease.server_id):
            return False
        row.update(last_server_ping=self._clock.monotonic(), error=status)
        return True

    async def reset_for_restart(self, trigger: TriggerRef) -> None:
        """Make an edited (unowned) trigger claimable at once."""
        await self._reach()
        row = self._rows.get(trigger)
        if row is not None and row["server_id"] is None:
            row["last_server_ping"] = None

    async def release(self, lease: Lease) -> None:
        """Give the lease back if it is still the holder's."""
        await self._reach()
        row = self._rows.get(lease.trigger)
        if row is not None and row["server_id"] == lease.server_id:
            row.update(server_id=None, last_server_ping=None)

    async def _reach(self) -> None:
        await self._reachable.wait()
        if self._failing:
            raise ConnectionError("the lease store is unreachable")


def _held_by(row: Mapping[str, Any], server_id: str) -> bool:
    return bool(row["server_id"] == server_id and row["mode"] in LEASED_MODES)


class MemorySource:
    """A queue of events that tests publish to and `MemoryListener`s consume in batches.

    `acked` and `nacked` list events in the order they were acked and nacked (an event nacked
    twice appears twice in `nacked`).
    """

    def __init__(self, batch_size: int = 10, *, pipelined: bool = False) -> None:
        self.batch_size = batch_size
        self.pipelined = pipelined
        self.acked: list[Event] = []
        self.nacked: list[Event] = []
        self.connect_attempts = 0
        self._queue: deque[Event] = deque()
        self._error: Exception | None = None
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def pending(self) -> tuple[Event, ...]:
        """Events waiting to be delivered, in delivery order."""
        return tuple(self._queue)

    def listener(self) -> MemoryListener:
        """A new listener on this source (a `PipelinedMemoryListener` if `pipelined`)."""
        return PipelinedMemoryListener(self) if self.pipelined else MemoryListener(self)

    def publish(self, *events: Event) -> None:
        """Append events to the queue."""
        self._queue.extend(events)
        self._wake()

    def go_offline(self, error: Exception | None = None) -> None:
        """Make connects fail and consumers raise `error` until `go_online`."""
        self._error = error if error is not None else ConnectionRefusedError("source unreachable")
        self._wake()

    def go_online(self) -> None:
        """Accept connections again."""
        self._error = None

    def _take(self) -> tuple[Event, ...]:
        count = min(self.batch_size, len(self._queue))
        return tuple(self._queue.popleft() for _ in range(count))

    def _redeliver(self, events: Sequence[Event]) -> None:
        self._queue.extendleft(reversed(events))
        self._wake()

    async def _changed(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class MemoryListener:
    """A listener on a `MemorySource`; batches it delivered stay its own until acked or nacked."""

    kind: ClassVar[str] = "memory"

    def __init__(self, source: MemorySource) -> None:
        self._source = source
        self._tokens = itertools.count()
        self._in_flight: dict[int, tuple[Event, ...]] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether `close` was called."""
        return self._closed

    async def connect(self) -> None:
        """Fail while the source is offline."""
        self._source.connect_attempts += 1
        if self._source._error is not None:
            raise self._source._error

    async def consume(self) -> AsyncIterator[Batch]:
        """Yield batches of up to `batch_size` events as they are published."""
        source = self._source
        while True:
            while not (self._closed or source._error is not None or source._queue):
                await source._changed()
            if self._closed:
                return
            if source._error is not None:
                raise source._error
            events = source._take()
            token = next(self._tokens)
            self._in_flight[token] = events
            yield Batch(events=events, ack_token=token)

    async def ack(self, batch: Batch) -> None:
        """Mark the batch's events acked (once)."""
        events = self._in_flight.pop(batch.ack_token, None)
        if events is not None:
            self._source.acked.extend(events)

    async def nack(self, batch: Batch) -> None:
        """Put the batch's events back at the front of the queue (once)."""
        events = self._in_flight.pop(batch.ack_token, None)
        if events is not None:
            self._source.nacked.extend(events)
            self._source._redeliver(events)

    async def close(self) -> None:
        """Return every unacked batch to the queue and end `consume`."""
        if self._closed:
            return
        self._closed = True
        unacked = [event for events in self._in_flight.values() for event in events]
        self._in_flight.clear()
        self._source._redeliver(unacked)


class PipelinedMemoryListener(MemoryListener):
    """A `MemoryListener` whose next batches are submitted before earlier ones are acked; nacks
    applied latest first put the earliest batch back at the front, as a Kafka seek does."""

    max_batches_in_flight: ClassVar[int] = 2


class RecordingJobSink:
    """A `JobSink` that records each submitted batch; fenced by a `MemoryLeaseStore` if given."""

    def __init__(self, store: MemoryLeaseStore | None = None) -> None:
        self.submitted: list[tuple[Lease, tuple[Event, ...]]] = []
        self._store = store
        self._error: Exception | None = None
        self._open = asyncio.Event()
        self._open.set()

    @property
    def events(self) -> list[Event]:
        """Every submitted event, in submission order."""
        return [event for _, events in self.submitted for event in events]

    def fail(self, error: Exception) -> None:
        """Make every submit raise `error` until `recover`."""
        self._error = error

    def recover(self) -> None:
        """Let submits succeed again."""
        self._error = None

    def pause(self) -> None:
        """Hold every submit until `resume`."""
        self._open.clear()

    def resume(self) -> None:
        """Let held submits proceed."""
        self._open.set()

    async def submit(self, lease: Lease, events: Sequence[Event]) -> list[UUID]:
        """Record the events and return a new job id for each."""
        await self._open.wait()
        if self._error is not None:
            raise self._error
        if self._store is not None and not await self._store.holds(lease):
            raise LeaseLost(lease.trigger, lease.server_id)
        self.submitted.append((lease, tuple(events)))
        return [uuid4() for _ in events]


class RecordingAlertSink:
    """An `AlertSink` that records raised and cleared alerts."""

    def __init__(self) -> None:
        self.raised: list[tuple[TriggerRef, str]] = []
        self.cleared: list[TriggerRef] = []

    @property
    def open(self) -> set[TriggerRef]:
        """Triggers with more alerts raised than cleared."""
        balance = Counter(trigger for trigger, _ in self.raised)
        balance.subtract(self.cleared)
        return {trigger for trigger, count in balance.items() if count > 0}

    async def raise_alert(self, trigger: TriggerRef, message: str) -> None:
        """Record the alert."""
        self.raised.append((trigger, message))

    async def clear_alert(self, trigger: TriggerRef) -> None:
        """Record the clearing."""
        self.cleared.append(trigger)

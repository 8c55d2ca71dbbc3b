"""The listener contract: what every source kind implements and what it hands events to.

A listener connects to one trigger's source and yields batches of events; the supervisor submits
each batch as jobs (`JobSink`) and only then acks it, so a crash before the ack means the source
redelivers. Connection trouble is reported through `AlertSink`, once per incident.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable
from uuid import UUID

from gateway.listeners.lease import Lease, TriggerRef
from gateway.triggers.event import Event


@dataclass(frozen=True, slots=True)
class Batch:
    """Events read from a source together, and what the source needs to ack or nack them."""

    events: Sequence[Event]
    ack_token: Any


class Listener(Protocol):
    """One trigger's connection to its source; a new one is made for every connection attempt."""

    kind: ClassVar[str]

    async def connect(self) -> None:
        """Open the connection; raise if the source cannot be reached."""
        ...

    def consume(self) -> AsyncIterator[Batch]:
        """Yield batches until the source closes the stream; raise on connection errors."""
        ...

    async def ack(self, batch: Batch) -> None:
        """Tell the source the batch is safely stored; idempotent."""
        ...

    async def nack(self, batch: Batch) -> None:
        """Ask the source to redeliver the batch soon, where the source can."""
        ...

    async def close(self) -> None:
        """Release the connection; idempotent and safe after cancellation."""
        ...


@runtime_checkable
class PipelinedListener(Listener, Protocol):
    """A listener that lets the next batches be read and submitted before earlier ones are acked.

    Its `ack` and `nack` may run while `consume` waits for the next batch, and nacks applied
    latest batch first leave the source at the earliest nacked batch (a Kafka seek, a per-message
    JetStream nak), so that a failed batch and every batch read after it are delivered again.
    """

    max_batches_in_flight: ClassVar[int]


ListenerFactory = Callable[[Lease], Listener]
"""Builds a listener for a claimed trigger from its row; one factory per kind."""


class JobSink(Protocol):
    """Turns events into durable jobs."""

    async def submit(self, lease: Lease, events: Sequence[Event]) -> list[UUID]:
        """Insert one job per event in one transaction and return their ids.

        Fenced: raises `LeaseLost` (and inserts nothing) if this instance no longer holds the
        lease.
        """
        ...


class AlertSink(Protocol):
    """Where a trigger that cannot reach its source is reported to people."""

    async def raise_alert(self, trigger: TriggerRef, message: str) -> None:
        """Open an alert for the trigger."""
        ...

    async def clear_alert(self, trigger: TriggerRef) -> None:
        """Close the trigger's open alert."""
        ...

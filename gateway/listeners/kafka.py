"""The Kafka listener: one consumer-group member per leased `kafka_trigger`.

Delivery is at-least-once. Auto-commit is off; `ack` commits, per partition, the offset after the
batch's last record, and the supervisor acks only once the batch's jobs are committed. A crash, a
closed listener or a nack before that leaves the offsets uncommitted, so the records come again
(`nack` seeks back at once) and the dedup key `<topic>/<partition>/<offset>` maps each one to the
job it already became.

Rebalances (aiokafka's eager protocol revokes every partition of the member): the revocation
callback waits for a commit in progress, so what was acked is committed before the partitions
move, and then starts a new assignment generation. A batch read in an earlier generation is
dropped: acking it commits nothing and nacking it seeks nothing, since its partitions were handed
on (or re-fetched from the committed offsets) and their next reader delivers the records again.

A trigger with `auto_commit` false commits nothing on its own, as in Windmill: its offsets only
move through `commit_offsets`. Its row's `reset_offset` rewinds the group to the beginning of
every assigned partition once: the flag is cleared in the row when the rewind is committed.

Helpers for the management API and the trigger status, each on a short-lived client that does
not join the group: `consumer_lag`, `commit_offsets`, `reset_offsets`. A broker accepts their
commits only while the group has no member, so they raise `Conflict` while the trigger runs.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError

from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.listeners.base import Batch, ListenerFactory
from gateway.listeners.kafka_config import (
    ConsumerOptions,
    KafkaResource,
    connection_kwargs,
    parse_resource,
    validate_trigger,
)
from gateway.listeners.lease import Lease, TriggerRef
from gateway.resources import resource_value
from gateway.store import Store, execute
from gateway.triggers.event import Event

logger = logging.getLogger(__name__)

_Partitions = Collection[TopicPartition]
ResourceLoader = Callable[[str, str], Awaitable[Any]]
"""Reads a resource's value by workspace and path (`resource_value` on a store)."""


@dataclass(frozen=True, slots=True)
class KafkaTriggerInfo:
    """What every event of one trigger says about where it was consumed."""

    brokers: tuple[str, ...]
    group_id: str


@dataclass(frozen=True, slots=True)
class KafkaAckToken:
    """A batch's place in each partition, and the assignment generation it was read in."""

    generation: int
    first: Mapping[TopicPartition, int]  # offset of the batch's first record
    following: Mapping[TopicPartition, int]  # offset after its last record: what a commit stores


class KafkaListener:
    """A consumer-group member for one leased trigger; see the module docstring for acking."""

    kind: ClassVar[str] = "kafka"
    delivery_guarantee: ClassVar[str] = "at-least-once"
    # The next fetches are submitted while the previous batch commits (three in flight kept the
    # database and this process busier than two): acks go out in order, and nacks applied latest
    # first leave each partition at the earliest nacked offset.
    max_batches_in_flight: ClassVar[int] = 3

    def __init__(
        self,
        lease: Lease,
        resources: ResourceLoader,
        options: ConsumerOptions,
        resets: OffsetResets,
    ) -> None:
        self._lease = lease
        self._resources = resources
        self._options = options
        self._resets = resets
        self._consumer: AIOKafkaConsumer | None = None
        self._info: KafkaTriggerInfo | None = None
        self._auto_commit = True
        # Bumped when partitions are revoked: batches read before belong to the old assignment.
        self._generation = 0
        self._committed: dict[TopicPartition, int] = {}  # by this member, this generation
        # Held while a commit is in flight, so that a revocation waits for it.
        self._commit_lock = asyncio.Lock()
        self._failure: Exception | None = None  # raised by `consume`: rebalance callbacks cannot

    async def connect(self) -> None:
        """Read the trigger and its resource, start the consumer and subscribe to the topics."""
        config = validate_trigger(self._lease.row)
        resource = parse_resource(
            await self._resources(self._lease.trigger.workspace_id, config.kafka_resource_path)
        )
        self._auto_commit = config.auto_commit
        self._info = KafkaTriggerInfo(resource.brokers, config.group_id)
        kwargs = await asyncio.to_thread(connection_kwargs, resource)
        self._consumer = AIOKafkaConsumer(
            group_id=config.group_id,
            enable_auto_commit=False,
            auto_offset_reset=config.auto_offset_reset,
            **self._options.consumer_kwargs(),
            **kwargs,
        )
        try:
            await self._consumer.start()
        except KafkaError as exc:
            raise ConnectionError(
                f"cannot reach Kafka brokers {', '.join(resource.brokers)}: {exc}"
            ) from exc
        self._consumer.subscribe(
            list(config.topics), listener=_Rebalance(self._revoked, self._assigned)
        )

    async def consume(self) -> AsyncIterator[Batch]:
        """Yield the records of each fetch as one batch (records of a partition in order)."""
        consumer, info = self._require_consumer(), self._info
        if info is None:
            raise RuntimeError(f"kafka trigger {self._lease.trigger} is not connected")
        timeout_ms = int(self._options.poll_timeout_s * 1000)
        while True:
            fetched = await consumer.getmany(timeout_ms=timeout_ms)
            if self._failure is not None:
                raise self._failure
            if not fetched:
                continue
            events = [to_event(record, info) for records in fetched.values() for record in records]
            token = KafkaAckToken(
                generation=self._generation,
                first={tp: records[0].offset for tp, records in fetched.items()},
                following={tp: records[-1].offset + 1 for tp, records in fetched.items()},
            )
            yield Batch(events=events, ack_token=token)

    async def ack(self, batch: Batch) -> None:
        """Commit the offsets after the batch, unless its partitions were revoked since."""
        token: KafkaAckToken = batch.ack_token
        consumer = self._consumer
        if not self._auto_commit or consumer is None:
            return
        async with self._commit_lock:
            if token.generation != self._generation:
                self._log_dropped("acked")
                return
            assigned = consumer.assignment()
            offsets = {
                tp: offset
                for tp, offset in token.following.items()
                if tp in assigned and offset > self._committed.get(tp, -1)
            }
            if not offsets:
                return
            try:
                await self._commit(consumer, offsets)
            except CommitFailedError as exc:
                # The group moved on before our callback ran (say this member was too slow):
                # the partitions' next reader re-reads these records and dedup absorbs them.
                logger.warning(
                    "kafka trigger %s: offsets not committed, the group rebalanced: %s",
                    self._lease.trigger,
                    exc,
                    extra=self._extra("commit_failed"),
                )
                return
            self._committed.update(offsets)

    async def nack(self, batch: Batch) -> None:
        """Seek back to the batch's first records, so that the next fetch returns them again."""
        token: KafkaAckToken = batch.ack_token
        consumer = self._consumer
        if consumer is None:
            return
        if token.generation != self._generation:
            self._log_dropped("nacked")
            return
        assigned = consumer.assignment()
        for tp, offset in token.first.items():
            if tp in assigned:
                consumer.seek(tp, offset)

    async def close(self) -> None:
        """Leave the group and close the connections; uncommitted records are redelivered."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    def _require_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError(f"kafka trigger {self._lease.trigger} is not connected")
        return self._consumer

    async def _commit(
        self, consumer: AIOKafkaConsumer, offsets: Mapping[TopicPartition, int]
    ) -> None:
        try:
            async with asyncio.timeout(self._options.commit_timeout_s):
                await consumer.commit(dict(offsets))
        except TimeoutError:
            raise TimeoutError(
                f"kafka trigger {self._lease.trigger}: offset commit got no answer within "
                f"{self._options.commit_timeout_s:.2f}s"
            ) from None

    async def _revoked(self, revoked: _Partitions) -> None:
        if not revoked:
            return
        async with self._commit_lock:
            self._generation += 1
            self._committed.clear()
        logger.info(
            "kafka trigger %s: partitions revoked: %s",
            self._lease.trigger,
            _describe_partitions(revoked),
            extra=self._extra("partitions_revoked"),
        )

    async def _assigned(self, assigned: _Partitions) -> None:
        logger.info(
            "kafka trigger %s: partitions assigned: %s",
            self._lease.trigger,
            _describe_partitions(assigned),
            extra=self._extra("partitions_assigned"),
        )
        if not assigned or not self._resets.pending(self._lease):
            return
        consumer = self._require_consumer()
        try:
            async with self._commit_lock:
                beginning: dict[TopicPartition, int] = await consumer.beginning_offsets(
                    list(assigned)
                )
                await self._commit(consumer, beginning)
                for tp, offset in beginning.items():
                    consumer.seek(tp, offset)
        except Exception as exc:
            self._failure = exc
            return
        await self._resets.applied(self._lease)
        logger.info(
            "kafka trigger %s: offsets reset to the beginning: %s",
            self._lease.trigger,
            _describe_partitions(beginning),
            extra=self._extra("offsets_reset"),
        )

    def _log_dropped(self, outcome: str) -> None:
        logger.debug(
            "kafka trigger %s: a batch %s after its partitions were revoked is dropped; their "
            "next reader delivers it again",
            self._lease.trigger,
            outcome,
            extra=self._extra("batch_dropped"),
        )

    def _extra(self, action: str) -> dict[str, str]:
        return {"action": action, "trigger": str(self._lease.trigger), "kind": self.kind}


# aiokafka ships no type information, so its base class is Any to mypy; subscribe() checks the
# listener with isinstance, so it must be a subclass all the same.
class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands aiokafka's rebalance callbacks to the listener."""

    def __init__(
        self,
        revoked: Callable[[_Partitions], Awaitable[None]],
        assigned: Callable[[_Partitions], Awaitable[None]],
    ) -> None:
        self._revoked = revoked
        self._assigned = assigned

    async def on_partitions_revoked(self, revoked: _Partitions) -> None:
        await self._revoked(revoked)

    async def on_partitions_assigned(self, assigned: _Partitions) -> None:
        await self._assigned(assigned)


class OffsetResets:
    """Applies a row's `reset_offset` once: the flag is cleared in the row (`clear`) once the
    rewind is committed, and, should that fail, not applied again under the same claim.

    A claim makes a new `Lease`, and every connection attempt under it gets the same object.
    """

    def __init__(self, clear: Callable[[Lease], Awaitable[object]] | None = None) -> None:
        self._applied: dict[TriggerRef, Lease] = {}
        self._clear = clear

    def pending(self, lease: Lease) -> bool:
        """Whether the lease's row asks for a reset not yet applied under this lease."""
        return bool(lease.row.get("reset_offset")) and self._applied.get(lease.trigger) is not lease

    async def applied(self, lease: Lease) -> None:
        """Record that the reset was committed under this lease, and clear the row's flag."""
        self._applied[lease.trigger] = lease
        if self._clear is None:
            return
        try:
            await self._clear(lease)
        except Exception as exc:
            logger.warning(
                "kafka trigger %s: offsets reset, but its reset_offset flag could not be "
                "cleared (the next claim resets them again): %s",
                lease.trigger,
                exc,
                extra={"action": "reset_flag_not_cleared", "trigger": str(lease.trigger)},
            )


async def clear_reset_offset(store: Store, lease: Lease) -> None:
    """Clear the `reset_offset` flag of the lease's row, while this instance holds it."""
    trigger = lease.trigger
    await execute(
        store,
        "clear_kafka_reset_offset",
        workspace_id=trigger.workspace_id,
        path=trigger.path,
        server_id=lease.server_id,
    )


def listener_factory(store: Store, options: ConsumerOptions | None = None) -> ListenerFactory:
    """Builds Kafka listeners that read their resource from `store` when they connect."""
    chosen = options if options is not None else ConsumerOptions()
    resets = OffsetResets(partial(clear_reset_offset, store))

    def build(lease: Lease) -> KafkaListener:
        return KafkaListener(lease, partial(resource_value, store), chosen, resets)

    return build


def to_event(record: ConsumerRecord[bytes, bytes], trigger: KafkaTriggerInfo) -> Event:
    """The event of one Kafka record; the payload is the value's bytes.

    Info: `brokers`, `topic`, `group_id`, `partition`, `offset`, `timestamp` (milliseconds since
    the epoch, None when the record has none), `key` and `headers` (`{name: [value, ...]}`, in
    record order). Keys and header values are text when they are UTF-8, as they nearly always
    are. A key that is not is given as `key_base64` (standard base64) with `key` None; header
    values that are not go to `headers_base64` under their name. A null header value is None,
    and a null record value (a tombstone) is an empty payload.
    """
    value = record.value if record.value is not None else b""
    key = None if record.key is None else _utf8(record.key)
    info: dict[str, Any] = {
        "brokers": list(trigger.brokers),
        "topic": record.topic,
        "group_id": trigger.group_id,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp if record.timestamp >= 0 else None,
        "key": key,
    }
    if record.key is not None and key is None:
        info["key_base64"] = _base64(record.key)
    headers: dict[str, list[str | None]] = {}
    binary_headers: dict[str, list[str]] = {}
    for name, raw in record.headers:
        text = None if raw is None else _utf8(raw)
        if raw is not None and text is None:
            binary_headers.setdefault(name, []).append(_base64(raw))
        else:
            headers.setdefault(name, []).append(text)
    info["headers"] = headers
    if binary_headers:
        info["headers_base64"] = binary_headers
    return Event(
        kind="kafka",
        payload=value,
        info=info,
        dedup_key=f"{record.topic}/{record.partition}/{record.offset}",
        raw=value,
    )


@dataclass(frozen=True, slots=True)
class PartitionOffset:
    """An offset of one partition."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """How far a group is behind on one partition; `committed` None when it never committed."""

    topic: str
    partition: int
    end_offset: int
    committed: int | None

    @property
    def lag(self) -> int | None:
        """Records after the committed offset, None when nothing was committed."""
        return None if self.committed is None else max(self.end_offset - self.committed, 0)


async def consumer_lag(
    resource: KafkaResource, group_id: str, topics: Sequence[str]
) -> list[PartitionLag]:
    """Per partition of `topics`: the end offset, the group's committed offset and the lag."""
    async with _outside_client(resource, group_id) as consumer:
        partitions = await _partitions_of(consumer, topics)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return [
            PartitionLag(tp.topic, tp.partition, ends[tp], await consumer.committed(tp))
            for tp in partitions
        ]


async def commit_offsets(
    resource: KafkaResource, group_id: str, topic: str, partition: int, offset: int
) -> None:
    """Set the group's committed offset (the next record it reads) on one partition."""
    if partition < 0:
        raise InvalidInput("partition", "must be 0 or more")
    if offset < 0:
        raise InvalidInput("offset", "must be 0 or more")
    async with _outside_client(resource, group_id) as consumer:
        tp = TopicPartition(topic, partition)
        if tp not in await _partitions_of(consumer, [topic]):
            raise InvalidInput("partition", f"topic {topic!r} has no partition {partition}")
        await _commit_outside(consumer, group_id, {tp: offset})


async def reset_offsets(
    resource: KafkaResource, group_id: str, topics: Sequence[str]
) -> list[PartitionOffset]:
    """Commit the beginning of every partition of `topics` for the group; what was committed."""
    async with _outside_client(resource, group_id) as consumer:
        partitions = await _partitions_of(consumer, topics)
        beginning: dict[TopicPartition, int] = await consumer.beginning_offsets(partitions)
        await _commit_outside(consumer, group_id, beginning)
    return [PartitionOffset(tp.topic, tp.partition, offset) for tp, offset in beginning.items()]


@asynccontextmanager
async def _outside_client(
    resource: KafkaResource, group_id: str
) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer that names the group for offsets but never joins it."""
    kwargs = await asyncio.to_thread(connection_kwargs, resource)
    consumer = AIOKafkaConsumer(group_id=group_id, enable_auto_commit=False, **kwargs)
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()
        raise ConnectionError(
            f"cannot reach Kafka brokers {', '.join(resource.brokers)}: {exc}"
        ) from exc
    try:
        yield consumer
    finally:
        await consumer.stop()


async def _partitions_of(consumer: AIOKafkaConsumer, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of `topics`, assigned to `consumer`; NotFound for a topic that is missing."""
    existing = await consumer.topics()
    partitions: list[TopicPartition] = []
    for topic in dict.fromkeys(topics):
        if topic not in existing:
            raise NotFound(f"Kafka topic {topic!r} does not exist")
        ids = consumer.partitions_for_topic(topic) or set()
        partitions.extend(TopicPartition(topic, partition) for partition in sorted(ids))
    consumer.assign(partitions)
    return partitions


async def _commit_outside(
    consumer: AIOKafkaConsumer, group_id: str, offsets: dict[TopicPartition, int]
) -> None:
    try:
        await consumer.commit(offsets)
    except CommitFailedError:
        raise Conflict(
            f"consumer group {group_id!r} has active members, and Kafka only accepts their own "
            "commits: disable the trigger, then retry"
        ) from None


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _describe_partitions(partitions: Collection[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(partitions)) or "none"

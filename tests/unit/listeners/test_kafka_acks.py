"""KafkaListener's acking over a scripted consumer: commits, seeks, rebalances, resets.

`ScriptedConsumer` stands in for aiokafka's consumer: a test hands it the fetches to return,
plays the group coordinator's rebalance callbacks, and holds commits in flight to walk the
interleavings step by step.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaConnectionError

from gateway.errors import InvalidInput
from gateway.listeners import kafka
from gateway.listeners.base import Batch
from gateway.listeners.kafka import KafkaListener, OffsetResets
from gateway.listeners.kafka_config import ConsumerOptions
from gateway.listeners.lease import Lease, TriggerRef

TOPIC = "orders"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
ROW = {"kafka_resource_path": "u/ops/kafka", "topics": [TOPIC], "group_id": "g"}


class ScriptedConsumer:
    """The part of `AIOKafkaConsumer` the listener uses, driven by the test."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.topics: list[str] = []
        self.listener: Any = None
        self.assigned: set[TopicPartition] = set()
        self.fetches: asyncio.Queue[dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]]
        self.fetches = asyncio.Queue()
        self.commits: list[dict[TopicPartition, int]] = []
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.beginning = {P0: 3, P1: 5}
        self.commit_gate = asyncio.Event()
        self.commit_gate.set()
        self.commit_error: Exception | None = None
        self.start_error: Exception | None = None
        self.stops = 0

    async def start(self) -> None:
        if self.start_error is not None:
            raise self.start_error

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.topics, self.listener = topics, listener

    async def getmany(self, timeout_ms: int) -> dict[TopicPartition, list[Any]]:
        return await self.fetches.get()

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(self.assigned)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await self.commit_gate.wait()
        if self.commit_error is not None:
            raise self.commit_error
        self.commits.append(dict(offsets))

    async def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[Any, int]:
        return {tp: self.beginning[tp] for tp in partitions}

    async def stop(self) -> None:
        self.stops += 1

    async def assign(self, *partitions: TopicPartition) -> None:
        """Play a completed join: the assignment is set, then the listener is told."""
        self.assigned = set(partitions)
        await self.listener.on_partitions_assigned(set(partitions))

    async def revoke(self) -> None:
        """Play the start of a rebalance: every partition is revoked (aiokafka is eager)."""
        revoked, self.assigned = self.assigned, set()
        await self.listener.on_partitions_revoked(revoked)

    def deliver(self, *records: ConsumerRecord[bytes, bytes]) -> None:
        """Make the next fetch return `records`, grouped by partition."""
        fetched: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        for record in records:
            fetched.setdefault(TopicPartition(record.topic, record.partition), []).append(record)
        self.fetches.put_nowait(fetched)


def record(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    """A record of TOPIC."""
    return ConsumerRecord(
        TOPIC, partition, offset, 0, 0, None, f"m{offset}".encode(), None, 0, 2, ()
    )


@pytest.fixture
def consumers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[ScriptedConsumer]]:
    """Every consumer the listener under test creates, in order."""
    made: list[ScriptedConsumer] = []

    def make(**kwargs: Any) -> ScriptedConsumer:
        made.append(ScriptedConsumer(**kwargs))
        return made[-1]

    monkeypatch.setattr(kafka, "AIOKafkaConsumer", make)
    yield made


def new_listener(resets: OffsetResets | None = None, **row: Any) -> KafkaListener:
    """A listener on the trigger `u/ops/orders` with ROW (and `row`) as its columns."""
    lease = Lease(TriggerRef("kafka", "acme", "u/ops/orders"), "gw-a", {**ROW, **row})

    async def resources(workspace_id: str, path: str) -> Any:
        return {"brokers": ["b1:9092"]}

    options = ConsumerOptions(commit_timeout_s=5)
    return KafkaListener(
        lease, resources, options, resets if resets is not None else OffsetResets()
    )


@pytest.fixture
async def connected(
    consumers: list[ScriptedConsumer],
) -> AsyncIterator[tuple[KafkaListener, ScriptedConsumer]]:
    """A connected listener that holds both partitions, and its consumer."""
    listener = new_listener()
    await listener.connect()
    consumer = consumers[0]
    await consumer.assign(P0, P1)
    yield listener, consumer
    await listener.close()


async def next_batch(listener: KafkaListener) -> Batch:
    """The next batch of the listener's stream."""
    async with asyncio.timeout(5):
        return await anext(aiter(listener.consume()))


async def settle() -> None:
    """Let every ready task run until it waits."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_connect_starts_a_consumer_without_auto_commit_on_the_triggers_topics(
    consumers: list[ScriptedConsumer],
) -> None:
    listener = new_listener(topics=["a", "b"], auto_offset_reset="earliest")

    await listener.connect()

    [consumer] = consumers
    assert consumer.topics == ["a", "b"]
    assert consumer.kwargs["group_id"] == "g"
    assert consumer.kwargs["enable_auto_commit"] is False
    assert consumer.kwargs["auto_offset_reset"] == "earliest"
    assert consumer.kwargs["bootstrap_servers"] == ["b1:9092"]


async def test_connect_refuses_an_invalid_trigger_before_any_consumer_exists(
    consumers: list[ScriptedConsumer],
) -> None:
    with pytest.raises(InvalidInput, match="topics"):
        await new_listener(topics=[]).connect()

    assert consumers == []


async def test_an_unreachable_broker_is_a_connection_error_naming_the_brokers(
    consumers: list[ScriptedConsumer], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(**kwargs: Any) -> ScriptedConsumer:
        consumer = ScriptedConsumer(**kwargs)
        consumer.start_error = KafkaConnectionError("Unable to bootstrap from b1:9092")
        consumers.append(consumer)
        return consumer

    monkeypatch.setattr(kafka, "AIOKafkaConsumer", unreachable)
    listener = new_listener()

    with pytest.raises(ConnectionError, match="b1:9092"):
        await listener.connect()
    await listener.close()

    assert consumers[0].stops == 1


async def test_one_fetch_is_one_batch_of_events_in_partition_order(
    connected: tuple[KafkaListener, ScriptedConsumer],
) -> None:
    listener, consumer = connected
    consumer.deliver(record(0, 7), record(1, 2), record(0, 8))

    batch = await next_batch(listener)

    assert [event.dedup_key for event in batch.events] == [
        "orders/0/7",
        "orders/0/8",
        "orders/1/2",
    ]


async def test_ack_commits_the_offset_after_each_partitions_last_record(
    connected: tuple[KafkaListener, ScriptedConsumer],
) -> None:
    listener, consumer = connected
    consumer.deliver(record(0, 7), record(0, 8), record(1, 2))

    await listener.ack(await next_batch(listener))

    assert consumer.commits == [{P0: 9, P1: 3}]


async def test_acking_a_batch_twice_commits_it_once(
    connected: tuple[KafkaListener, ScriptedConsumer],
) -> None:
    listener, consumer = connected
    consumer.deliver(record(0, 7))
    batch = await next_batch(listener)

    await listener.ack(batch)
    await listener.ack(batch)

    assert consumer.commits == [{P0: 8}]


async def test_nack_seeks_each_partition_back_to_the_batchs_first_record(
    connected: tuple[KafkaListener, ScriptedConsumer],
) -> None:
    listener, consumer = connected
    consumer.deliver(record(0, 7), record(0, 8), record(1, 2))

    await listener.nack(await next_batch(listener))

    assert sorted(consumer.seeks) == [(P0, 7), (P1, 2)]
    assert consumer.commits == []


async def test_a_trigger_without_auto_commit_never_commits(
    consumers: list[ScriptedConsumer],
) -> None:
    listener = new_listener(auto_commit=False)
    await listener.connect()
    await consumers[0].assign(P0)
    consumers[0].deliver(record(0, 7))

    await listener.ack(await next_batch(listener))

    assert consumers[0].commits == []


async def test_a_batch_read_before_its_partitions_were_revoked_is_dropped(
    connected: tuple[KafkaListener, ScriptedConsumer],
) -> None:
    listener, consumer = connected
    consumer.deliver(record(0, 7))
    batch = await next_batch(listener)

    await consumer.revoke()
    await consumer.assign(P0, P1)  # even when this member gets the partitions back
    await listener.ack(batch)
    await listener.nack(batch)

    assert (consumer.commits, consumer.seeks) == ([], [])


async def test_a_revocation_waits_until_the_commit_in_flight_is_done(
    connected: tuple[KafkaListener, ScriptedConsumer],
) -> None:
    listener, consumer = connected
    consumer.deliver(record(0, 7))
    batch = await next_batch(listener)
    consumer.commit_gate.clear()
    ack = asyncio.create_task(listener.ack(batch))
    await settle()
    revocation = asyncio.create_task(consumer.revoke())
    await settle()
    assert not revocation.done()

    consumer.commit_gate.set()
    await asyncio.wait_for(asyncio.gather(ack, revocation), timeout=5)

    assert consumer.commits == [{P0: 8}]


async def test_a_commit_refused_after_the_group_rebalanced_is_logged_not_raised(
    connected: tuple[KafkaListener, ScriptedConsumer], caplog: pytest.LogCaptureFixture
) -> None:
    listener, consumer = connected
    consumer.deliver(record(0, 7))
    batch = await next_batch(listener)
    consumer.commit_error = CommitFailedError("the group has already rebalanced")

    with caplog.at_level(logging.WARNING, logger="gateway.listeners.kafka"):
        await listener.ack(batch)

    assert "offsets not committed" in caplog.text
    assert "u/ops/orders" in caplog.text


async def test_a_commit_that_gets_no_answer_fails_the_ack(
    consumers: list[ScriptedConsumer],
) -> None:
    lease = Lease(TriggerRef("kafka", "acme", "u/ops/orders"), "gw-a", ROW)

    async def resources(workspace_id: str, path: str) -> Any:
        return {"brokers": ["b1:9092"]}

    listener = KafkaListener(
        lease, resources, ConsumerOptions(commit_timeout_s=0.01), OffsetResets()
    )
    await listener.connect()
    await consumers[0].assign(P0)
    consumers[0].deliver(record(0, 7))
    batch = await next_batch(listener)
    consumers[0].commit_gate.clear()

    with pytest.raises(TimeoutError, match="u/ops/orders"):
        await listener.ack(batch)


async def test_reset_offset_commits_and_seeks_the_beginning_once_per_lease(
    consumers: list[ScriptedConsumer],
) -> None:
    resets = OffsetResets()
    listener = new_listener(resets, reset_offset=True)
    await listener.connect()

    await consumers[0].assign(P0, P1)
    await consumers[0].revoke()
    await consumers[0].assign(P0, P1)

    assert consumers[0].commits == [{P0: 3, P1: 5}]
    assert sorted(consumers[0].seeks) == [(P0, 3), (P1, 5)]


async def test_a_reset_that_fails_is_raised_by_the_stream(
    consumers: list[ScriptedConsumer],
) -> None:
    resets = OffsetResets()
    listener = new_listener(resets, reset_offset=True)
    await listener.connect()
    consumers[0].commit_error = KafkaConnectionError("coordinator went away")

    await consumers[0].assign(P0)
    consumers[0].deliver()

    with pytest.raises(KafkaConnectionError):
        await next_batch(listener)


async def test_close_stops_the_consumer_once(
    connected: tuple[KafkaListener, ScriptedConsumer],
) -> None:
    listener, consumer = connected

    await listener.close()
    await listener.close()

    assert consumer.stops == 1

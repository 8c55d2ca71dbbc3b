"""The Kafka listener against a real broker: batches, commits, redelivery, offsets helpers, TLS."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

import pytest

from gateway.errors import Conflict, NotFound
from gateway.listeners.kafka import (
    OffsetResets,
    PartitionOffset,
    commit_offsets,
    consumer_lag,
    listener_factory,
    reset_offsets,
)
from gateway.listeners.kafka_config import parse_resource
from gateway.listeners.lease import Lease
from gateway.store import Json, open_store
from gateway.store.migrations import migrate
from gateway.triggers.event import Event
from gateway.workspaces import ensure_workspace
from tests.integration.listeners.kafka_broker import (
    FAST,
    RESOURCE_PATH,
    WORKSPACE,
    Message,
    consuming,
    reachable_broker,
    tls_broker,
    unique,
)
from tests.integration.support import OWNER

pytestmark = pytest.mark.integration


def offsets(events: Sequence[Event]) -> list[tuple[int, int]]:
    """(partition, offset) of each event, sorted."""
    return sorted((event.info["partition"], event.info["offset"]) for event in events)


async def test_records_become_events_with_key_headers_and_position(tmp_path: Path) -> None:
    broker = await reachable_broker()
    topic = await broker.create_topic(partitions=1)
    group = unique("group")
    await broker.produce(
        topic,
        Message(b'{"a":1}', key=b"order-1", headers=[("trace", b"t1"), ("trace", b"t2")]),
        Message(b"\xff\xfe", key=b"\x80binary"),
    )
    # Built as the runtime builds it: the resource comes from the store.
    store = await open_store(f"sqlite:///{tmp_path / 'gateway.db'}")
    try:
        await migrate(store)
        async with store.transaction() as tx:
            await ensure_workspace(tx, WORKSPACE, OWNER)
            await tx.execute(
                "upsert_resource",
                workspace_id=WORKSPACE,
                path=RESOURCE_PATH,
                value=Json(broker.resource),
                description="",
                resource_type="kafka",
                created_by=OWNER.username,
            )
        listener = listener_factory(store, FAST)(broker.lease([topic], group))

        async with consuming(listener) as stream:
            first, second = await stream.events(2)
    finally:
        await store.close()

    assert first.kind == "kafka"
    assert (first.payload, first.raw) == (b'{"a":1}', b'{"a":1}')
    assert first.dedup_key == f"{topic}/0/0"
    assert first.info["brokers"] == [broker.address]
    assert (first.info["topic"], first.info["group_id"]) == (topic, group)
    assert (first.info["partition"], first.info["offset"]) == (0, 0)
    assert first.info["key"] == "order-1"
    assert first.info["headers"] == {"trace": ["t1", "t2"]}
    assert isinstance(first.info["timestamp"], int)
    assert (second.payload, second.dedup_key) == (b"\xff\xfe", f"{topic}/0/1")
    assert second.info["key"] is None
    assert second.info["key_base64"] == base64.b64encode(b"\x80binary").decode()


async def test_records_of_every_partition_arrive_and_ack_commits_each_partition() -> None:
    broker = await reachable_broker()
    topic = await broker.create_topic(partitions=3)
    group = unique("group")
    await broker.produce(topic, *(Message(f"m{n}".encode(), partition=n % 3) for n in range(9)))

    async with consuming(broker.listener(broker.lease([topic], group))) as stream:
        events = await stream.events(9)

    assert offsets(events) == [(p, o) for p in range(3) for o in range(3)]
    for partition in range(3):
        in_partition = [e.info["offset"] for e in events if e.info["partition"] == partition]
        assert in_partition == [0, 1, 2]
    lag = await consumer_lag(parse_resource(broker.resource), group, [topic])
    assert {(row.partition, row.committed, row.lag) for row in lag} == {
        (0, 3, 0),
        (1, 3, 0),
        (2, 3, 0),
    }


async def test_a_new_member_of_the_group_starts_after_the_acked_records() -> None:
    broker = await reachable_broker()
    topic = await broker.create_topic(partitions=1)
    group = unique("group")
    await broker.produce(topic, Message(b"m0"), Message(b"m1"))
    async with consuming(broker.listener(broker.lease([topic], group))) as stream:
        assert offsets(await stream.events(2)) == [(0, 0), (0, 1)]
    await broker.produce(topic, Message(b"m2"))

    async with consuming(broker.listener(broker.lease([topic], group))) as stream:
        again = await stream.events(1)

    assert [(e.payload, e.info["offset"]) for e in again] == [(b"m2", 2)]


async def test_a_nacked_batch_is_delivered_again() -> None:
    broker = await reachable_broker()
    topic = await broker.create_topic(partitions=1)
    await broker.produce(topic, Message(b"m0"), Message(b"m1"))

    async with consuming(broker.listener(broker.lease([topic], unique("group")))) as stream:
        first = await stream.batch()
        await stream.listener.nack(first)
        again = await stream.events(len(first.events), ack=False)

    assert [e.dedup_key for e in again] == [e.dedup_key for e in first.events]


async def test_records_not_acked_when_the_listener_closes_go_to_the_next_member() -> None:
    broker = await reachable_broker()
    topic = await broker.create_topic(partitions=1)
    group = unique("group")
    await broker.produce(topic, Message(b"m0"), Message(b"m1"))
    async with consuming(broker.listener(broker.lease([topic], group))) as stream:
        unacked = await stream.events(2, ack=False)

    async with consuming(broker.listener(broker.lease([topic], group))) as stream:
        again = await stream.events(2)

    assert [e.dedup_key for e in again] == [e.dedup_key for e in unacked]


async def test_reset_offset_rewinds_the_group_once_and_clears_the_flag() -> None:
    broker = await reachable_broker()
    topic = await broker.create_topic(partitions=1)
    group = unique("group")
    await broker.produce(topic, Message(b"m0"), Message(b"m1"))
    async with consuming(broker.listener(broker.lease([topic], group))) as stream:
        await stream.events(2)
    cleared: list[Lease] = []

    async def clear(lease: Lease) -> None:
        cleared.append(lease)

    lease = broker.lease([topic], group, reset_offset=True)
    resets = OffsetResets(clear)

    async with consuming(broker.listener(lease, resets)) as stream:
        rewound = await stream.events(2)
    await broker.produce(topic, Message(b"m2"))
    # A reconnect under the same lease carries on from the commits, it does not rewind again.
    async with consuming(broker.listener(lease, resets)) as stream:
        carried_on = await stream.events(1)

    assert offsets(rewound) == [(0, 0), (0, 1)]
    assert offsets(carried_on) == [(0, 2)]
    assert cleared == [lease]


async def test_offsets_helpers_move_an_idle_group_and_refuse_a_running_one() -> None:
    broker = await reachable_broker()
    resource = parse_resource(broker.resource)
    topic = await broker.create_topic(partitions=2)
    group = unique("group")
    await broker.produce(topic, *(Message(b"m", partition=n % 2) for n in range(6)))

    await commit_offsets(resource, group, topic, partition=1, offset=2)
    committed = {
        row.partition: row.committed for row in await consumer_lag(resource, group, [topic])
    }
    assert committed == {0: None, 1: 2}

    assert await reset_offsets(resource, group, [topic]) == [
        PartitionOffset(topic, 0, 0),
        PartitionOffset(topic, 1, 0),
    ]
    lag = await consumer_lag(resource, group, [topic])
    assert {(row.partition, row.committed, row.lag) for row in lag} == {(0, 0, 3), (1, 0, 3)}

    with pytest.raises(NotFound, match="does not exist"):
        await reset_offsets(resource, group, [topic, unique("missing")])

    async with consuming(broker.listener(broker.lease([topic], group))) as stream:
        await stream.events(1, ack=False)  # the listener is a member of the group now
        with pytest.raises(Conflict, match="active members"):
            await commit_offsets(resource, group, topic, partition=0, offset=1)


async def test_a_listener_reaches_a_broker_over_mutual_tls() -> None:
    async with tls_broker() as broker:
        topic = await broker.create_topic(partitions=1)
        await broker.produce(topic, Message(b"over tls", key=b"k"))

        async with consuming(broker.listener(broker.lease([topic], unique("group")))) as stream:
            [event] = await stream.events(1)

    assert (event.payload, event.info["key"]) == (b"over tls", "k")

"""Source lag read from real sources: the test Kafka broker, SQS (moto) and the CDC cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.listeners.kafka import commit_offsets
from gateway.listeners.kafka_config import parse_resource
from gateway.observability.source_lag import LagProbe, SourceLag
from gateway.store import Store

from ..listeners.brokers import store_with_resources
from ..listeners.cdc_cluster import RESOURCE_PATH as CDC_RESOURCE
from ..listeners.cdc_cluster import cdc_resource, cdc_source
from ..listeners.kafka_broker import Message, reachable_broker, unique
from ..listeners.test_sqs_listener import RESOURCE as SQS_RESOURCE
from ..listeners.test_sqs_listener import new_queue, send, sqs
from .support import put_resource, put_trigger

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A SQLite store with the test workspace."""
    async with store_with_resources(tmp_path, {}) as opened:
        yield opened


async def test_kafka_lag_counts_the_records_after_the_committed_offsets(store: Store) -> None:
    broker = await reachable_broker()
    topic = await broker.create_topic(partitions=1)
    await broker.produce(topic, *(Message(f"m{n}".encode()) for n in range(3)))
    await put_resource(store, "u/alice/kafka", "kafka", broker.resource)
    group = unique("group")
    orders = await put_trigger(
        store,
        "kafka",
        "orders",
        kafka_resource_path="u/alice/kafka",
        topics=[topic],
        group_id=group,
    )

    never_committed = await LagProbe(store, ttl_s=0).lags([orders])
    assert never_committed[orders] == SourceLag(
        "messages", None, "the consumer group has committed no offset yet"
    )
    await commit_offsets(parse_resource(broker.resource), group, topic, 0, 1)
    assert (await LagProbe(store, ttl_s=0).lags([orders]))[orders] == SourceLag("messages", 2)


async def test_sqs_lag_is_the_number_of_visible_messages(store: Store) -> None:
    async with sqs() as client:
        queue_url = await new_queue(client)
        await send(client, queue_url, "a", "b")
    await put_resource(store, "u/alice/aws", "aws", SQS_RESOURCE)
    queue = await put_trigger(
        store, "sqs", "queue", queue_url=queue_url, aws_resource_path="u/alice/aws"
    )

    assert (await LagProbe(store, ttl_s=0).lags([queue]))[queue] == SourceLag("messages", 2)


async def test_postgres_lag_is_the_wal_after_the_slot_confirmed_position(store: Store) -> None:
    async with cdc_source() as source:
        await source.run("INSERT INTO {full} (id, note) VALUES (1, 'not yet streamed')")
        await put_resource(store, CDC_RESOURCE, "postgresql", cdc_resource())
        changes = await put_trigger(store, "postgres", "changes", **source.trigger_columns())

        lag = (await LagProbe(store, ttl_s=0).lags([changes]))[changes]

    assert lag.unit == "bytes"
    assert lag.value is not None
    assert lag.value > 0

"""JetStream against the shared server: a durable pull consumer, acked after the jobs commit."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import ConsumerConfig

from gateway.listeners.base import Batch
from gateway.listeners.lease import Lease
from gateway.listeners.nats import JetStreamListener, NatsConnectionError, listener_factory
from gateway.store import Store

from .brokers import NATS_URL, events_until, lease_of, nats_address, store_with_resources, unique

pytestmark = pytest.mark.integration
RESOURCE = "u/alice/nats"


@dataclass
class Stream:
    """A stream of this test: its name, the subject prefix it holds, a client publishing."""

    name: str
    prefix: str
    client: NatsClient

    async def publish(
        self, suffix: str, data: bytes, headers: dict[str, str] | None = None
    ) -> None:
        """Publish to `<prefix>.<suffix>` and wait until the stream stored it."""
        await self.client.jetstream().publish(f"{self.prefix}.{suffix}", data, headers=headers)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A store whose `u/alice/nats` resource names the shared server as a URL."""
    nats_address()
    resource = {"servers": [NATS_URL], "auth": "none"}
    async with store_with_resources(tmp_path, {RESOURCE: ("nats", resource)}) as opened:
        yield opened


@pytest.fixture
async def stream() -> AsyncIterator[Stream]:
    """A stream name and subject prefix of this test; the stream is deleted afterwards."""
    nats_address()
    client = await nats.connect(NATS_URL)
    made = Stream(unique("GWTEST_"), unique("gwtest."), client)
    yield made
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await client.jetstream().delete_stream(made.name)
    await client.close()


def jetstream_lease(stream: Stream, consumer: str, *subjects: str) -> Lease:
    """A JetStream trigger on `stream` with durable consumer `consumer`."""
    return lease_of(
        "nats",
        nats_resource_path=RESOURCE,
        subjects=list(subjects) or [f"{stream.prefix}.>"],
        use_jetstream=True,
        stream_name=stream.name,
        consumer_name=consumer,
    )


async def connected(
    store: Store, lease: Lease, ack_wait_s: float | None = None
) -> JetStreamListener:
    """A JetStream listener of `lease`, connected (`ack_wait_s` if it creates the consumer)."""
    listener = JetStreamListener(lease, store, ack_wait_s=ack_wait_s)
    await listener.connect()
    return listener


def payloads(batches: list[Batch]) -> list[bytes]:
    """The payloads of the batches' events, in order."""
    return [event.payload for batch in batches for event in batch.events]


async def test_events_carry_headers_and_the_stream_sequence_as_dedup_key(
    store: Store, stream: Stream
) -> None:
    lease = jetstream_lease(stream, unique("c"))
    listener = listener_factory(store)(lease)
    await listener.connect()  # creates the stream and the consumer
    consume = listener.consume()
    try:
        await stream.publish("orders", b'{"a":1}', headers={"Nats-Msg-Id": "m-1", "Trace": "t"})
        await stream.publish("refunds", b"r")
        batches = await events_until(consume, 2)
        for batch in batches:
            await listener.ack(batch)
    finally:
        await listener.close()

    events = [event for batch in batches for event in batch.events]
    assert isinstance(listener, JetStreamListener)
    assert listener.delivery_guarantee == "at-least-once"
    assert [(e.payload, e.dedup_key) for e in events] == [
        (b'{"a":1}', f"{stream.name}/1"),
        (b"r", f"{stream.name}/2"),
    ]
    assert events[0].info == {
        "servers": [NATS_URL],
        "subject": f"{stream.prefix}.orders",
        "length": 7,
        "headers": {"Nats-Msg-Id": ["m-1"], "Trace": ["t"]},
    }


async def test_a_nacked_message_is_redelivered_with_the_same_dedup_key(
    store: Store, stream: Stream
) -> None:
    listener = await connected(store, jetstream_lease(stream, unique("c")))
    consume = listener.consume()
    try:
        await stream.publish("a", b"once")
        [refused] = await events_until(consume, 1)
        await listener.nack(refused)
        [again] = await events_until(consume, 1)
        await listener.ack(again)
    finally:
        await listener.close()

    assert [e.payload for e in again.events] == [b"once"]
    assert [e.dedup_key for e in again.events] == [e.dedup_key for e in refused.events]


async def test_acked_messages_are_not_redelivered_after_rebinding_the_durable(
    store: Store, stream: Stream
) -> None:
    lease = jetstream_lease(stream, unique("c"))
    first = await connected(store, lease, ack_wait_s=1.0)
    consume = first.consume()
    try:
        await stream.publish("a", b"acked")
        for batch in await events_until(consume, 1):
            await first.ack(batch)
    finally:
        await first.close()

    second = await connected(store, lease, ack_wait_s=1.0)
    consume = second.consume()
    try:
        await stream.publish("a", b"after")
        batches = await events_until(consume, 1)
    finally:
        await second.close()

    assert payloads(batches) == [b"after"]


async def test_a_message_never_acked_is_redelivered_to_the_next_listener(
    store: Store, stream: Stream
) -> None:
    lease = jetstream_lease(stream, unique("c"))
    first = await connected(store, lease, ack_wait_s=1.0)
    try:
        await stream.publish("a", b"unacked")
        [delivered] = await events_until(first.consume(), 1)
    finally:
        await first.close()  # as a crash before the jobs were committed

    second = await connected(store, lease, ack_wait_s=1.0)
    consume = second.consume()
    try:
        [redelivered] = await events_until(consume, 1)
        await second.ack(redelivered)
    finally:
        await second.close()

    assert payloads([redelivered]) == [b"unacked"]
    assert redelivered.events[0].dedup_key == delivered.events[0].dedup_key


async def test_the_consumer_follows_the_trigger_subjects(store: Store, stream: Stream) -> None:
    # The gateway creates a missing stream but never changes one: this one covers both subjects.
    await stream.client.jetstream().add_stream(name=stream.name, subjects=[f"{stream.prefix}.>"])
    consumer = unique("c")
    first = await connected(store, jetstream_lease(stream, consumer, f"{stream.prefix}.a"))
    await first.close()

    edited = await connected(store, jetstream_lease(stream, consumer, f"{stream.prefix}.b"))
    consume = edited.consume()
    try:
        await stream.publish("a", b"old subject")
        await stream.publish("b", b"new subject")
        batches = await events_until(consume, 1)
    finally:
        await edited.close()

    assert payloads(batches) == [b"new subject"]


async def test_several_subjects_filter_the_consumer_or_fail_clearly(
    store: Store, stream: Stream
) -> None:
    lease = jetstream_lease(stream, unique("c"), f"{stream.prefix}.a", f"{stream.prefix}.b")
    listener = JetStreamListener(lease, store)
    try:
        try:
            await listener.connect()
        except NatsConnectionError as exc:
            # Servers before 2.10 would ignore the filters and deliver the whole stream.
            assert "cannot filter on several subjects" in str(exc)
            assert stream.client.connected_server_version.minor < 10
            return
        consume = listener.consume()
        for suffix in ("c", "a", "b"):
            await stream.publish(suffix, suffix.encode())
        batches = await events_until(consume, 2)
    finally:
        await listener.close()

    assert payloads(batches) == [b"a", b"b"]


async def test_an_existing_push_consumer_is_refused_with_a_clear_error(
    store: Store, stream: Stream
) -> None:
    consumer = unique("c")
    js = stream.client.jetstream()
    await js.add_stream(name=stream.name, subjects=[f"{stream.prefix}.>"])
    await js.add_consumer(
        stream.name, ConsumerConfig(durable_name=consumer, deliver_subject=unique("deliver."))
    )
    listener = JetStreamListener(jetstream_lease(stream, consumer), store)
    try:
        with pytest.raises(NatsConnectionError, match="is a push consumer"):
            await listener.connect()
    finally:
        await listener.close()

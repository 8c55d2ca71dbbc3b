"""Core NATS against the shared server: subscriptions become batches of events, at most once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient

from gateway.listeners.nats import NatsConnectionError, NatsListener, listener_factory
from gateway.store import Store

from .brokers import (
    NATS_URL,
    events_until,
    free_port,
    lease_of,
    nats_address,
    next_batch,
    store_with_resources,
    unique,
)

pytestmark = pytest.mark.integration
RESOURCE = "u/alice/nats"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A store whose `u/alice/nats` resource names the shared server as `host:port`."""
    host, port = nats_address()
    resource = {"servers": [f"{host}:{port}"], "auth": {"label": "NO_AUTH"}}
    async with store_with_resources(tmp_path, {RESOURCE: ("nats", resource)}) as opened:
        yield opened


@pytest.fixture
async def publisher() -> AsyncIterator[NatsClient]:
    """A plain client publishing to the shared server."""
    nats_address()
    client = await nats.connect(NATS_URL)
    yield client
    await client.close()


async def connected(store: Store, *subjects: str) -> NatsListener:
    """A core listener subscribed to `subjects`."""
    lease = lease_of("nats", nats_resource_path=RESOURCE, subjects=list(subjects))
    listener = listener_factory(store)(lease)
    assert isinstance(listener, NatsListener)
    await listener.connect()
    return listener


async def test_messages_become_events_with_subject_headers_and_no_dedup_key(
    store: Store, publisher: NatsClient
) -> None:
    prefix = unique("gwtest.")
    listener = await connected(store, f"{prefix}.*")
    stream = listener.consume()
    try:
        await publisher.publish(f"{prefix}.orders", b'{"a":1}', headers={"Trace": "t-1"})
        await publisher.publish(f"{prefix}.refunds", b"\xff")
        await publisher.flush()

        batches = await events_until(stream, 2)
    finally:
        await listener.close()

    events = [event for batch in batches for event in batch.events]
    host, port = nats_address()
    assert [(e.kind, e.payload, e.raw, e.dedup_key) for e in events] == [
        ("nats", b'{"a":1}', b'{"a":1}', None),
        ("nats", b"\xff", b"\xff", None),
    ]
    assert events[0].info == {
        "servers": [f"{host}:{port}"],
        "subject": f"{prefix}.orders",
        "length": 7,
        "headers": {"Trace": ["t-1"]},
    }
    assert events[1].info == {
        "servers": [f"{host}:{port}"],
        "subject": f"{prefix}.refunds",
        "length": 1,
    }
    assert listener.delivery_guarantee == "at-most-once"


async def test_every_subject_gets_its_own_subscription(store: Store, publisher: NatsClient) -> None:
    prefix = unique("gwtest.")
    listener = await connected(store, f"{prefix}.a", f"{prefix}.b.>")
    stream = listener.consume()
    try:
        for subject in (f"{prefix}.c", f"{prefix}.a", f"{prefix}.b.x.y", f"{prefix}.b"):
            await publisher.publish(subject, subject.encode())
        await publisher.flush()

        batches = await events_until(stream, 2)
    finally:
        await listener.close()

    # Each subscription delivers on its own, so only the set of subjects is certain.
    subjects = sorted(event.info["subject"] for batch in batches for event in batch.events)
    assert subjects == [f"{prefix}.a", f"{prefix}.b.x.y"]


async def test_a_nacked_batch_comes_again_before_new_messages(
    store: Store, publisher: NatsClient
) -> None:
    subject = unique("gwtest.")
    listener = await connected(store, subject)
    stream = listener.consume()
    try:
        await publisher.publish(subject, b"first")
        await publisher.flush()
        refused = await next_batch(stream)
        await publisher.publish(subject, b"second")
        await publisher.flush()

        await listener.nack(refused)
        again = await next_batch(stream)
        await listener.ack(again)
        after = await events_until(stream, 1)
    finally:
        await listener.close()

    assert again is refused
    assert [e.payload for b in after for e in b.events] == [b"second"]


async def test_closing_twice_is_harmless(store: Store) -> None:
    listener = await connected(store, unique("gwtest."))

    await listener.close()
    await listener.close()


async def test_connect_names_the_server_it_cannot_reach(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    resources = {RESOURCE: ("nats", {"servers": [address]})}
    async with store_with_resources(tmp_path, resources) as store:
        listener = listener_factory(store)(
            lease_of("nats", nats_resource_path=RESOURCE, subjects=["a"])
        )
        try:
            with pytest.raises(NatsConnectionError, match=f"cannot connect to NATS at {address}"):
                await listener.connect()
        finally:
            await listener.close()

"""A NATS server of our own that goes away, comes back, and asks for a password."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import nats.errors
import pytest

from gateway.listeners.base import Batch
from gateway.listeners.lease import Lease
from gateway.listeners.nats import JetStreamListener, NatsConnectionError, NatsListener
from gateway.store import Store

from ..support import eventually
from .brokers import (
    BrokerProcess,
    events_until,
    lease_of,
    next_batch,
    own_nats_server,
    store_with_resources,
    unique,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A JetStream-enabled nats-server on a free port, with its file store in `tmp_path`."""
    with own_nats_server(tmp_path / "nats") as started:
        yield started


@pytest.fixture
async def store(tmp_path: Path, server: BrokerProcess) -> AsyncIterator[Store]:
    """A store whose `u/alice/nats` resource names the private server."""
    resource = {"servers": [f"127.0.0.1:{server.port}"]}
    async with store_with_resources(tmp_path, {"u/alice/nats": ("nats", resource)}) as opened:
        yield opened


def jetstream_lease() -> Lease:
    """A JetStream trigger on a stream and consumer of its own."""
    return lease_of(
        "nats",
        nats_resource_path="u/alice/nats",
        subjects=["orders.>"],
        use_jetstream=True,
        stream_name=unique("ORDERS_"),
        consumer_name=unique("c"),
    )


async def publish(port: int, subject: str, data: bytes) -> None:
    """Publish one message into the private server's stream."""
    client = await nats.connect(f"nats://127.0.0.1:{port}")
    try:
        await client.jetstream().publish(subject, data)
    finally:
        await client.close()


async def jetstream_answers(port: int) -> bool:
    """Whether the server's JetStream answers (after a restart it first recovers its store)."""
    client = await nats.connect(f"nats://127.0.0.1:{port}")
    try:
        await client.jetstream().account_info()
    except nats.errors.Error:
        return False
    finally:
        await client.close()
    return True


async def test_a_vanished_server_ends_consume_and_fails_connect_until_it_is_back(
    store: Store, server: BrokerProcess
) -> None:
    lease = lease_of("nats", nats_resource_path="u/alice/nats", subjects=["orders"])
    listener = NatsListener(lease, store)
    await listener.connect()
    stream = listener.consume()
    try:
        server.stop()
        with pytest.raises(NatsConnectionError, match="connection to the NATS server was lost"):
            await next_batch(stream)
    finally:
        await listener.close()

    retry = NatsListener(lease, store)
    try:
        with pytest.raises(
            NatsConnectionError, match=f"cannot connect to NATS at 127.0.0.1:{server.port}"
        ):
            await retry.connect()
    finally:
        await retry.close()

    server.start()
    back = NatsListener(lease, store)
    try:
        await back.connect()
    finally:
        await back.close()


async def test_an_unacked_message_survives_a_server_restart(
    store: Store, server: BrokerProcess
) -> None:
    lease = jetstream_lease()
    first = JetStreamListener(lease, store, ack_wait_s=1.0)
    await first.connect()
    try:
        await publish(server.port, "orders.1", b"kept")
        [delivered] = await events_until(first.consume(), 1)
    finally:
        await first.close()

    server.stop()
    server.start()
    await eventually(lambda: jetstream_answers(server.port))

    second = JetStreamListener(lease, store)
    await second.connect()
    try:
        batches: list[Batch] = await events_until(second.consume(), 1)
    finally:
        await second.close()

    [redelivered] = [event for batch in batches for event in batch.events]
    assert redelivered.payload == b"kept"
    assert redelivered.dedup_key == delivered.events[0].dedup_key


async def test_credentials_are_sent_and_a_wrong_password_is_a_clear_error(
    tmp_path: Path,
) -> None:
    with own_nats_server(tmp_path / "nats", "--user", "gw", "--pass", "s3cret") as server:
        for password, works in (("wrong", False), ("s3cret", True)):
            resource = {
                "servers": [f"nats://127.0.0.1:{server.port}"],
                "auth": {"label": "USER_PASSWORD", "user": "gw", "password": password},
            }
            (tmp_path / password).mkdir()
            resources = {"u/alice/nats": ("nats", resource)}
            async with store_with_resources(tmp_path / password, resources) as store:
                lease = lease_of("nats", nats_resource_path="u/alice/nats", subjects=["a"])
                listener = NatsListener(lease, store)
                try:
                    if works:
                        await listener.connect()
                    else:
                        with pytest.raises(NatsConnectionError, match="Authorization"):
                            await listener.connect()
                finally:
                    await listener.close()

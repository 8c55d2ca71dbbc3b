"""MQTT sessions on the shared broker: what is kept while the listener is away, what is acked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.listeners.base import Batch
from gateway.listeners.lease import Lease
from gateway.listeners.mqtt import MqttListener
from gateway.listeners.mqtt_config import validate_trigger
from gateway.store import Store

from .brokers import (
    events_until,
    forget_mqtt_session,
    lease_of,
    mqtt_address,
    mqtt_publish,
    store_with_resources,
    unique,
)

pytestmark = pytest.mark.integration
RESOURCE = "u/alice/mqtt"
VERSIONS = pytest.mark.parametrize("version", ["v3", "v5"])


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A store whose `u/alice/mqtt` resource names the shared broker."""
    host, port = mqtt_address()
    async with store_with_resources(
        tmp_path, {RESOURCE: ("mqtt", {"broker": host, "port": port})}
    ) as opened:
        yield opened


@pytest.fixture
def topic() -> Iterator[str]:
    """A topic of this test."""
    yield unique("gwtest/")


@pytest.fixture
def sessions() -> Iterator[list[Lease]]:
    """Triggers whose broker sessions are ended after the test."""
    made: list[Lease] = []
    yield made
    for lease in made:
        forget_mqtt_session(
            mqtt_address(), validate_trigger(lease.row).client_id_for(lease.trigger)
        )


def mqtt_lease(version: str, topic: str, qos: int = 1, **row: Any) -> Lease:
    """A trigger of client `version` subscribing `topic`; the sessions default to persistent."""
    columns = {"client_id": None, "v3_config": None, "v5_config": None, **row}
    return lease_of(
        "mqtt",
        mqtt_resource_path=RESOURCE,
        subscribe_topics=[{"topic": topic, "qos": qos}],
        client_version=version,
        **columns,
    )


async def connected(store: Store, lease: Lease, sessions: list[Lease]) -> MqttListener:
    """A connected listener of `lease`, its session ended after the test."""
    sessions.append(lease)
    listener = MqttListener(lease, store)
    await listener.connect()
    return listener


async def publish(topic: str, payload: bytes, qos: int = 1) -> None:
    """Publish to the shared broker from another client."""
    await asyncio.to_thread(mqtt_publish, mqtt_address(), topic, payload, qos=qos)


async def received_after_reconnect(
    store: Store, lease: Lease, sessions: list[Lease], topic: str
) -> list[bytes]:
    """Connect again and take (and ack) what arrives up to a marker published after connecting.

    The broker resends what the session holds as soon as the client connects, so anything it
    held comes before the marker.
    """
    listener = await connected(store, lease, sessions)
    stream = listener.consume()
    received: list[bytes] = []
    try:
        await publish(topic, b"marker")
        while b"marker" not in received:
            batch = (await events_until(stream, 1))[0]
            await listener.ack(batch)
            received.extend(event.payload for event in batch.events)
    finally:
        await listener.close()
    return received


def payloads(batch: Batch) -> list[bytes]:
    """The payloads of the batch's events."""
    return [event.payload for event in batch.events]


@VERSIONS
async def test_qos1_messages_published_while_closed_arrive_after_reconnect(
    store: Store, sessions: list[Lease], topic: str, version: str
) -> None:
    lease = mqtt_lease(version, topic)
    await (await connected(store, lease, sessions)).close()

    await publish(topic, b"while away 1")
    await publish(topic, b"while away 2")
    received = await received_after_reconnect(store, lease, sessions, topic)

    assert received == [b"while away 1", b"while away 2", b"marker"]


@VERSIONS
async def test_a_qos1_message_not_acked_before_close_is_redelivered(
    store: Store, sessions: list[Lease], topic: str, version: str
) -> None:
    lease = mqtt_lease(version, topic)
    listener = await connected(store, lease, sessions)
    try:
        await publish(topic, b"not committed")
        [received] = await events_until(listener.consume(), 1)
    finally:
        await listener.close()  # as a crash before the jobs were committed

    again = await received_after_reconnect(store, lease, sessions, topic)

    assert payloads(received) == [b"not committed"]
    assert again == [b"not committed", b"marker"]


@VERSIONS
async def test_an_acked_qos1_message_is_not_redelivered(
    store: Store, sessions: list[Lease], topic: str, version: str
) -> None:
    lease = mqtt_lease(version, topic)
    listener = await connected(store, lease, sessions)
    try:
        await publish(topic, b"committed")
        [received] = await events_until(listener.consume(), 1)
        await listener.ack(received)
    finally:
        await listener.close()

    assert await received_after_reconnect(store, lease, sessions, topic) == [b"marker"]


@VERSIONS
async def test_a_qos2_message_received_but_not_acked_is_not_redelivered(
    store: Store, sessions: list[Lease], topic: str, version: str
) -> None:
    # The documented window: PUBREC went out before the listener saw the message.
    lease = mqtt_lease(version, topic, qos=2)
    listener = await connected(store, lease, sessions)
    try:
        await publish(topic, b"exactly once, unless we die", qos=2)
        [received] = await events_until(listener.consume(), 1)
    finally:
        await listener.close()

    again = await received_after_reconnect(store, lease, sessions, topic)

    assert payloads(received) == [b"exactly once, unless we die"]
    assert again == [b"marker"]


@pytest.mark.parametrize(
    ("version", "clean"),
    [("v3", {"v3_config": {"clean_session": True}}), ("v5", {"v5_config": {"clean_start": True}})],
)
async def test_a_clean_session_forgets_what_was_published_while_closed(
    store: Store, sessions: list[Lease], topic: str, version: str, clean: dict[str, Any]
) -> None:
    lease = mqtt_lease(version, topic, **clean)
    await (await connected(store, lease, sessions)).close()

    await publish(topic, b"while away")

    assert await received_after_reconnect(store, lease, sessions, topic) == [b"marker"]

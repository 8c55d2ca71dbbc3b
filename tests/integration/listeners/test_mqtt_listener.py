"""MQTT against the shared broker, as v3.1.1 and v5 clients: messages become events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.listeners.base import Batch
from gateway.listeners.lease import Lease
from gateway.listeners.mqtt import MqttConnectionError, MqttListener
from gateway.listeners.mqtt_config import validate_trigger
from gateway.store import Store

from .brokers import (
    events_until,
    forget_mqtt_session,
    free_port,
    lease_of,
    mqtt_address,
    mqtt_publish,
    store_with_resources,
    unique,
)

pytestmark = pytest.mark.integration
RESOURCE = "u/alice/mqtt"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A store whose `u/alice/mqtt` resource names the shared broker."""
    host, port = mqtt_address()
    resource = {"broker": host, "port": port, "credentials": {"username": "", "password": ""}}
    async with store_with_resources(tmp_path, {RESOURCE: ("mqtt", resource)}) as opened:
        yield opened


@pytest.fixture
def sessions() -> Iterator[list[Lease]]:
    """Triggers whose broker sessions are ended after the test."""
    made: list[Lease] = []
    yield made
    for lease in made:
        client_id = validate_trigger(lease.row).client_id_for(lease.trigger)
        forget_mqtt_session(mqtt_address(), client_id)


def mqtt_lease(version: str, *topics: tuple[str, Any]) -> Lease:
    """A trigger of client `version` subscribing `(topic, qos)` pairs."""
    return lease_of(
        "mqtt",
        mqtt_resource_path=RESOURCE,
        subscribe_topics=[{"topic": topic, "qos": qos} for topic, qos in topics],
        client_version=version,
        client_id=None,
        v3_config=None,
        v5_config=None,
    )


async def connected(store: Store, lease: Lease, sessions: list[Lease]) -> MqttListener:
    """A connected listener of `lease`, its session ended after the test."""
    listener = MqttListener(lease, store)
    sessions.append(lease)
    await listener.connect()
    return listener


async def publish(topic: str, payload: bytes, **options: Any) -> None:
    """Publish to the shared broker from another client."""
    await asyncio.to_thread(mqtt_publish, mqtt_address(), topic, payload, **options)


def payloads(batches: list[Batch]) -> list[bytes]:
    """The payloads of the batches' events, in order."""
    return [event.payload for batch in batches for event in batch.events]


@pytest.mark.parametrize("version", ["v3", "v5"])
async def test_messages_become_events_with_topic_qos_retain_and_no_dedup_key(
    store: Store, sessions: list[Lease], version: str
) -> None:
    prefix = unique("gwtest/")
    await publish(f"{prefix}/one", b"retained", qos=1, retain=True)
    lease = mqtt_lease(version, (f"{prefix}/one", "qos1"), (f"{prefix}/zero/+", 0))
    listener = await connected(store, lease, sessions)
    stream = listener.consume()
    try:
        await publish(f"{prefix}/zero/x", b"at most once", qos=1)
        await publish(f"{prefix}/one", b"\x00\xff", qos=1)
        batches = await events_until(stream, 3)
        for batch in batches:
            await listener.ack(batch)
    finally:
        await listener.close()
        await publish(f"{prefix}/one", b"", qos=1, retain=True)  # clears the retained message

    events = [event for batch in batches for event in batch.events]
    assert [(e.kind, e.payload, e.raw, e.dedup_key) for e in events] == [
        ("mqtt", b"retained", b"retained", None),
        ("mqtt", b"at most once", b"at most once", None),
        ("mqtt", b"\x00\xff", b"\x00\xff", None),
    ]
    infos = [dict(e.info) for e in events]
    assert [info.pop("pkid") > 0 for info in infos] == [True, False, True]
    assert infos == [
        {"topic": f"{prefix}/one", "retain": True, "qos": 1, "v5": None},
        {"topic": f"{prefix}/zero/x", "retain": False, "qos": 0, "v5": None},
        {"topic": f"{prefix}/one", "retain": False, "qos": 1, "v5": None},
    ]


async def test_v5_publish_properties_are_in_the_trigger_info(
    store: Store, sessions: list[Lease]
) -> None:
    topic = unique("gwtest/")
    listener = await connected(store, mqtt_lease("v5", (topic, 1)), sessions)
    stream = listener.consume()
    try:
        await publish(
            topic,
            b"{}",
            properties={
                "PayloadFormatIndicator": 1,
                "ContentType": "application/json",
                "ResponseTopic": f"{topic}/reply",
                "CorrelationData": b"\x01\x02",
                "UserProperty": [("a", "1"), ("a", "2")],
            },
        )
        [batch] = await events_until(stream, 1)
        await listener.ack(batch)
    finally:
        await listener.close()

    assert batch.events[0].info["v5"] == {
        "payload_format_indicator": 1,
        "topic_alias": None,
        "response_topic": f"{topic}/reply",
        "correlation_data": [1, 2],
        "user_properties": [["a", "1"], ["a", "2"]],
        "subscription_identifiers": [],
        "content_type": "application/json",
    }


@pytest.mark.parametrize("version", ["v3", "v5"])
async def test_a_nacked_batch_comes_again_before_new_messages(
    store: Store, sessions: list[Lease], version: str
) -> None:
    topic = unique("gwtest/")
    listener = await connected(store, mqtt_lease(version, (topic, 1)), sessions)
    stream = listener.consume()
    try:
        await publish(topic, b"first")
        [refused] = await events_until(stream, 1)
        await publish(topic, b"second")
        await listener.nack(refused)
        [again] = await events_until(stream, 1)
        await listener.ack(again)
        after = await events_until(stream, 1)
    finally:
        await listener.close()

    assert again is refused
    assert payloads(after) == [b"second"]


@pytest.mark.parametrize("version", ["v3", "v5"])
async def test_a_message_of_a_topic_no_longer_subscribed_is_acked_and_dropped(
    store: Store, sessions: list[Lease], version: str
) -> None:
    prefix = unique("gwtest/")
    before = mqtt_lease(version, (f"{prefix}/old", 1))
    await (await connected(store, before, sessions)).close()
    await publish(f"{prefix}/old", b"left in the session")
    # The same trigger (same client id, same session) edited to another topic.
    after = Lease(
        before.trigger,
        before.server_id,
        {**before.row, "subscribe_topics": [{"topic": f"{prefix}/new", "qos": 1}]},
    )

    for marker in (b"first marker", b"second marker"):
        listener = await connected(store, after, sessions)
        stream = listener.consume()
        try:
            await publish(f"{prefix}/new", marker)
            batches = await events_until(stream, 1)
            await listener.ack(batches[0])
        finally:
            await listener.close()
        assert payloads(batches) == [marker]


async def test_connect_names_the_broker_it_cannot_reach(tmp_path: Path) -> None:
    port = free_port()
    resources = {RESOURCE: ("mqtt", {"broker": "127.0.0.1", "port": port})}
    async with store_with_resources(tmp_path, resources) as store:
        listener = MqttListener(mqtt_lease("v5", ("a", 1)), store)
        try:
            with pytest.raises(
                MqttConnectionError, match=f"cannot reach the MQTT broker at 127.0.0.1:{port}"
            ):
                await listener.connect()
        finally:
            await listener.close()
            await listener.close()

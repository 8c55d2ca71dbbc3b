"""A mosquitto of our own that goes away, comes back, and refuses strangers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway.listeners.lease import Lease
from gateway.listeners.mqtt import MqttConnectionError, MqttListener
from gateway.store import Store

from .brokers import (
    BrokerProcess,
    events_until,
    lease_of,
    mqtt_publish,
    next_batch,
    own_mosquitto,
    store_with_resources,
)

pytestmark = pytest.mark.integration
RESOURCE = "u/alice/mqtt"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A mosquitto on a free port, persisting into `tmp_path`."""
    with own_mosquitto(tmp_path / "mosquitto") as started:
        yield started


@pytest.fixture
async def store(tmp_path: Path, broker: BrokerProcess) -> AsyncIterator[Store]:
    """A store whose `u/alice/mqtt` resource names the private broker."""
    resource = {"broker": "127.0.0.1", "port": broker.port}
    async with store_with_resources(tmp_path, {RESOURCE: ("mqtt", resource)}) as opened:
        yield opened


def mqtt_lease(version: str = "v5") -> Lease:
    """A trigger on topic `orders` at QoS 1, with a persistent session."""
    return lease_of(
        "mqtt",
        mqtt_resource_path=RESOURCE,
        subscribe_topics=[{"topic": "orders", "qos": "qos1"}],
        client_version=version,
    )


async def test_a_vanished_broker_ends_consume_and_fails_connect_until_it_is_back(
    store: Store, broker: BrokerProcess
) -> None:
    lease = mqtt_lease()
    listener = MqttListener(lease, store)
    await listener.connect()
    stream = listener.consume()
    try:
        broker.stop()
        with pytest.raises(MqttConnectionError, match="connection to the MQTT broker was lost"):
            await next_batch(stream)
    finally:
        await listener.close()

    retry = MqttListener(lease, store)
    try:
        with pytest.raises(
            MqttConnectionError, match=f"cannot reach the MQTT broker at 127.0.0.1:{broker.port}"
        ):
            await retry.connect()
    finally:
        await retry.close()

    broker.start()
    back = MqttListener(lease, store)
    try:
        await back.connect()
    finally:
        await back.close()


@pytest.mark.parametrize("version", ["v3", "v5"])
async def test_a_message_queued_for_the_session_survives_a_broker_restart(
    store: Store, broker: BrokerProcess, version: str
) -> None:
    lease = mqtt_lease(version)
    listener = MqttListener(lease, store)
    await listener.connect()
    await listener.close()
    await asyncio.to_thread(mqtt_publish, ("127.0.0.1", broker.port), "orders", b"kept")

    broker.stop()  # mosquitto saves its sessions on the way out
    broker.start()

    back = MqttListener(lease, store)
    await back.connect()
    try:
        batches = await events_until(back.consume(), 1)
    finally:
        await back.close()
    assert [event.payload for batch in batches for event in batch.events] == [b"kept"]


async def test_a_refused_connection_says_why(tmp_path: Path) -> None:
    with own_mosquitto(tmp_path / "closed", anonymous=False) as broker:
        resource = {"broker": "127.0.0.1", "port": broker.port}
        async with store_with_resources(tmp_path, {RESOURCE: ("mqtt", resource)}) as store:
            listener = MqttListener(mqtt_lease(), store)
            try:
                with pytest.raises(MqttConnectionError, match="refused us: Not authorized"):
                    await listener.connect()
            finally:
                await listener.close()

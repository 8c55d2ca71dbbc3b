"""`GATEWAY_LISTENER_MAX_BATCH` bounds a Kafka fetch and a JetStream pull: one job transaction."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from gateway.listeners.kafka import KafkaListener
from gateway.listeners.lease import Lease, TriggerRef
from gateway.listeners.nats import JetStreamListener
from gateway.listeners.registry import listener_factories
from gateway.settings import Settings
from gateway.store import open_store


def lease_of(kind: str, **row: Any) -> Lease:
    """A lease on a trigger of `kind` whose row holds `row`."""
    return Lease(TriggerRef(kind, "acme", "u/ops/orders"), "gw-a", MappingProxyType(row))


async def test_the_batch_setting_reaches_the_kafka_and_jetstream_listeners() -> None:
    settings = Settings.load({"GATEWAY_LISTENER_MAX_BATCH": "250"})
    store = await open_store("sqlite:///:memory:")
    try:
        factories = listener_factories(store, settings, kinds=("kafka", "nats"))
    finally:
        await store.close()

    kafka = factories["kafka"](lease_of("kafka"))
    jetstream = factories["nats"](lease_of("nats", use_jetstream=True))

    assert isinstance(kafka, KafkaListener)
    assert kafka._options.consumer_kwargs()["max_poll_records"] == 250
    assert isinstance(jetstream, JetStreamListener)
    assert jetstream._max_batch == 250

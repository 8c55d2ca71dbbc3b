"""A Kafka trigger's offsets set through the management API with the `windmill-api` client
(`commit_kafka_offsets`, `reset_kafka_offsets`), against the test Kafka broker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from windmill_api.api.kafka_trigger import commit_kafka_offsets, reset_kafka_offsets
from windmill_api.models.commit_kafka_offsets_json_body import CommitKafkaOffsetsJsonBody

from gateway.listeners.kafka import consumer_lag
from gateway.listeners.kafka_config import parse_resource

from ..listeners.kafka_broker import WAIT_S, Broker, Message, reachable_broker, unique
from ..support import OWNER, WS
from .conftest import Api, free_port
from .test_auth import BOB, add_user

pytestmark = pytest.mark.integration

TRIGGER = "u/alice/orders"
RESOURCE = "u/alice/kafka"


async def kafka_trigger(api: Api, broker: Broker | dict[str, Any], topics: list[str]) -> str:
    """A Kafka trigger at `TRIGGER` on `topics` whose resource reaches `broker`; its group."""
    value = broker.resource if isinstance(broker, Broker) else broker
    group = unique("group")
    http = await api.http()
    created = await http.post(
        f"/w/{WS}/resources/create",
        json={"path": RESOURCE, "resource_type": "kafka", "value": value},
    )
    assert created.status_code in (200, 201), created.text
    created = await http.post(
        f"/w/{WS}/kafka_triggers/create",
        json={
            "path": TRIGGER, "script_path": "f/t/hello", "is_flow": False,
            "kafka_resource_path": RESOURCE, "topics": topics, "group_id": group,
            "mode": "disabled",
        },
    )  # fmt: skip
    assert created.status_code == 201, created.text
    return group


async def committed(broker: Broker, group: str, topic: str) -> dict[int, int | None]:
    """The group's committed offset of each partition of `topic`."""
    lag = await consumer_lag(parse_resource(broker.resource), group, [topic])
    return {row.partition: row.committed for row in lag}


def offset(topic: str, partition: int, value: int) -> CommitKafkaOffsetsJsonBody:
    """The body of `commit_kafka_offsets`."""
    return CommitKafkaOffsetsJsonBody(topic=topic, partition=partition, offset=value)


async def test_commit_then_reset_moves_the_group_of_the_trigger(asgi_api: Api) -> None:
    broker = await reachable_broker()
    topic = await broker.create_topic(partitions=2)
    await broker.produce(topic, *(Message(b"m", partition=n % 2) for n in range(6)))
    group = await kafka_trigger(asgi_api, broker, [topic])
    client = await asgi_api.client()

    done = await commit_kafka_offsets.asyncio_detailed(
        WS, TRIGGER, client=client, json_body=offset(topic, 1, 2)
    )
    assert done.status_code == 200, done.content
    assert await committed(broker, group, topic) == {0: None, 1: 2}

    reset = await reset_kafka_offsets.asyncio_detailed(WS, TRIGGER, client=client)
    assert reset.status_code == 200, reset.content
    http = await asgi_api.http()
    again = await http.post(f"/w/{WS}/kafka_triggers/reset_offsets/{TRIGGER}")
    assert again.json() == [
        {"topic": topic, "partition": 0, "offset": 0},
        {"topic": topic, "partition": 1, "offset": 0},
    ]
    assert await committed(broker, group, topic) == {0: 0, 1: 0}
    operations = await asgi_api.audit_operations()
    assert operations.count("kafka_triggers.commit_offsets") == 1
    assert operations.count("kafka_triggers.reset_offsets") == 2


async def test_a_commit_is_refused_while_the_group_has_a_member(asgi_api: Api) -> None:
    broker = await reachable_broker()
    topic = await broker.create_topic(partitions=1)
    await broker.produce(topic, Message(b"m"))
    group = await kafka_trigger(asgi_api, broker, [topic])
    member = AIOKafkaConsumer(
        topic,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6_000,
        rebalance_timeout_ms=2_000,
        **broker.client_kwargs(),
    )
    await member.start()
    try:
        async with asyncio.timeout(WAIT_S):
            while not await member.getmany(timeout_ms=200):
                pass
        client = await asgi_api.client()
        refused = await commit_kafka_offsets.asyncio_detailed(
            WS, TRIGGER, client=client, json_body=offset(topic, 0, 1)
        )
    finally:
        await member.stop()
    assert refused.status_code == 409
    assert b"disable the trigger" in refused.content
    assert "kafka_triggers.commit_offsets" not in await asgi_api.audit_operations()


async def test_what_a_commit_is_refused_for(asgi_api: Api) -> None:
    broker = await reachable_broker()
    topic = await broker.create_topic(partitions=1)
    await kafka_trigger(asgi_api, broker, [topic])
    http = await asgi_api.http()
    url = f"/w/{WS}/kafka_triggers/commit_offsets/{TRIGGER}"

    async def refusal(body: dict[str, Any], status: int = 400) -> Any:
        response = await http.post(url, json=body)
        assert response.status_code == status, response.text
        return response.json()["error"]

    assert (await refusal({"topic": "elsewhere", "partition": 0, "offset": 0}))["field"] == "topic"
    assert (await refusal({"topic": topic, "partition": 3, "offset": 0}))["field"] == "partition"
    assert (await refusal({"topic": topic, "partition": 0, "offset": -1}))["field"] == "offset"
    assert (await refusal({"topic": topic, "offset": 0}))["field"] == "partition"
    missing = await http.post(f"/w/{WS}/kafka_triggers/reset_offsets/u/alice/nothing_here", json={})
    assert missing.status_code == 404


async def test_only_writers_of_the_trigger_may_move_its_offsets(asgi_api: Api) -> None:
    broker = await reachable_broker()
    topic = await broker.create_topic(partitions=1)
    await kafka_trigger(asgi_api, broker, [topic])
    await add_user(asgi_api, BOB)
    body = {"topic": topic, "partition": 0, "offset": 0}
    url = f"/w/{WS}/kafka_triggers/commit_offsets/{TRIGGER}"

    reader = await asgi_api.http(
        await asgi_api.token_for(OWNER, scopes=[f"kafka_triggers:read:{TRIGGER}"])
    )
    assert (await reader.post(url, json=body)).status_code == 403
    elsewhere = await asgi_api.http(
        await asgi_api.token_for(OWNER, scopes=["kafka_triggers:write:f/*"])
    )
    assert (await elsewhere.post(url, json=body)).status_code == 403
    scoped = await asgi_api.http(
        await asgi_api.token_for(OWNER, scopes=[f"kafka_triggers:write:{TRIGGER}"])
    )
    assert (await scoped.post(url, json=body)).status_code == 200
    other_user = await asgi_api.http(await asgi_api.token_for(BOB))
    assert (await other_user.post(url, json=body)).status_code in (403, 404)


async def test_an_unreachable_broker_is_blamed_on_the_resource(asgi_api: Api) -> None:
    resource = {"brokers": [f"127.0.0.1:{free_port()}"], "security": {"label": "PLAINTEXT"}}
    await kafka_trigger(asgi_api, resource, ["orders"])
    http = await asgi_api.http()
    response = await http.post(f"/w/{WS}/kafka_triggers/reset_offsets/{TRIGGER}")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "resource"
    assert "cannot reach Kafka brokers" in response.json()["error"]["reason"]

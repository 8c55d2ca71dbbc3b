"""The connection tests of the listener kinds, `POST /w/{ws}/<kind>_triggers/test`, against the
services of `.run/services.env`: a service that answers passes (200, empty body); one nobody
listens on fails at once with a 400 naming its host; a connection that cannot be used is a 400
naming the field. Kafka, NATS, SQS, PostgreSQL and WebSocket also go through the `windmill-api`
client, as Windmill users call them.

Each test uses resources, queues, topics and ports of its own.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiobotocore.session import get_session
from websockets.asyncio.server import ServerConnection, serve
from windmill_api.api.kafka_trigger import test_kafka_connection
from windmill_api.api.nats_trigger import test_nats_connection
from windmill_api.api.postgres_trigger import test_postgres_connection
from windmill_api.api.sqs_trigger import test_sqs_connection
from windmill_api.api.websocket_trigger import test_websocket_connection

# Aliased: pytest would take a class named Test* for a test class.
from windmill_api.models.test_kafka_connection_json_body import (
    TestKafkaConnectionJsonBody as KafkaBody,
)
from windmill_api.models.test_nats_connection_json_body import (
    TestNatsConnectionJsonBody as NatsBody,
)
from windmill_api.models.test_postgres_connection_json_body import (
    TestPostgresConnectionJsonBody as PostgresBody,
)
from windmill_api.models.test_sqs_connection_json_body import TestSqsConnectionJsonBody as SqsBody
from windmill_api.models.test_websocket_connection_json_body import (
    TestWebsocketConnectionJsonBody as WebsocketBody,
)

from gateway.http_routes.api import connection_tests
from gateway.listeners.gcp import PubSubClients
from gateway.listeners.gcp_config import parse_resource as parse_gcp_resource

from ...conftest import POSTGRES_ADMIN_URL, service_missing
from ..listeners.brokers import NATS_URL, mqtt_address, nats_address
from ..listeners.cdc_cluster import cdc_resource
from ..listeners.cdc_cluster import connect as cdc_connect
from ..listeners.kafka_broker import reachable_broker
from ..support import OWNER, WS
from .conftest import Api, free_port
from .test_auth import BOB, add_user

pytestmark = pytest.mark.integration

SQS_ENDPOINT = os.environ.get("GATEWAY_TEST_SQS", "http://127.0.0.1:25000")
PUBSUB_HOST = os.environ.get("GATEWAY_TEST_PUBSUB", "127.0.0.1:28085")
QUICK_S = 10.0
"""A failure to reach a closed port is reported well within this (not after the 30 s bound)."""


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: what a connection test does does not depend on the gateway's database."""
    return f"sqlite:///{tmp_path / 'gateway.db'}"


def unique(prefix: str) -> str:
    """A name no other test or run uses."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


async def answer_of(api: Api, kind: str, body: dict[str, Any]) -> httpx.Response:
    """The answer of `kind`'s test endpoint to `body`."""
    http = await api.http()
    return await http.post(f"/w/{WS}/{kind}_triggers/test", json=body)


async def add_resource(api: Api, resource_type: str, value: Any) -> str:
    """A new resource of alice's holding `value`; its path."""
    path = f"u/alice/{unique(resource_type + '_')}"
    http = await api.http()
    created = await http.post(
        f"/w/{WS}/resources/create",
        json={"path": path, "resource_type": resource_type, "value": value},
    )
    assert created.status_code == 201, created.text
    return path


def refusal(status: int, content: bytes) -> dict[str, Any]:
    """The error of a 400 answer: `{"field"?, "reason"}`."""
    assert status == 400, content
    error: dict[str, Any] = httpx.Response(400, content=content).json()["error"]
    return error


def closed_address() -> str:
    """A loopback `host:port` nobody listens on."""
    return f"127.0.0.1:{free_port()}"


@asynccontextmanager
async def quickly() -> AsyncIterator[None]:
    """Fails the test when the block takes longer than QUICK_S."""
    started = time.monotonic()
    yield
    assert time.monotonic() - started < QUICK_S


# Kafka ------------------------------------------------------------------------------------------


def kafka_body(connection: Any) -> KafkaBody:
    """The client's body of `test_kafka_connection`."""
    return KafkaBody.from_dict({"connection": connection})


async def test_kafka_brokers_that_answer_pass_inline_or_by_resource_path(asgi_api: Api) -> None:
    broker = await reachable_broker()
    client = await asgi_api.client()
    path = await add_resource(asgi_api, "kafka", broker.resource)

    for connection in (broker.resource, {"kafka_resource_path": path}):
        passed = await test_kafka_connection.asyncio_detailed(
            WS, client=client, json_body=kafka_body(connection)
        )
        assert passed.status_code == 200, passed.content
        assert passed.content == b""
    older = await answer_of(asgi_api, "kafka", {"kafka_resource_path": path})
    assert older.status_code == 200, older.text


async def test_kafka_brokers_nobody_listens_on_fail_at_once_naming_them(asgi_api: Api) -> None:
    await reachable_broker()
    address = closed_address()
    client = await asgi_api.client()

    async with quickly():
        failed = await test_kafka_connection.asyncio_detailed(
            WS, client=client, json_body=kafka_body({"brokers": [address]})
        )
    error = refusal(failed.status_code, failed.content)
    assert error["field"] == "connection"
    assert f"Kafka brokers {address}" in error["reason"]


async def test_an_unusable_kafka_connection_is_refused_naming_the_field(asgi_api: Api) -> None:
    client = await asgi_api.client()
    inline = await test_kafka_connection.asyncio_detailed(
        WS, client=client, json_body=kafka_body({"brokers": []})
    )
    assert refusal(inline.status_code, inline.content)["field"] == "connection.brokers"

    path = await add_resource(
        asgi_api, "kafka", {"brokers": [closed_address()], "security": {"label": "SASL_SSL"}}
    )
    stored = await answer_of(asgi_api, "kafka", {"connection": {"kafka_resource_path": path}})
    error = refusal(stored.status_code, stored.content)
    assert error["field"] == "resource.security.mechanism"
    assert path in error["reason"]

    missing = await answer_of(
        asgi_api, "kafka", {"connection": {"kafka_resource_path": "u/alice/x"}}
    )
    assert refusal(missing.status_code, missing.content)["field"] == (
        "connection.kafka_resource_path"
    )
    nothing = await answer_of(asgi_api, "kafka", {})
    assert refusal(nothing.status_code, nothing.content)["field"] == "connection"


# NATS -------------------------------------------------------------------------------------------


def nats_body(connection: Any) -> NatsBody:
    """The client's body of `test_nats_connection`."""
    return NatsBody.from_dict({"connection": connection})


async def test_nats_servers_that_answer_pass_with_references_resolved(asgi_api: Api) -> None:
    nats_address()
    http = await asgi_api.http()
    variable = f"u/alice/{unique('nats_url_')}"
    created = await http.post(
        f"/w/{WS}/variables/create",
        json={"path": variable, "value": NATS_URL, "is_secret": False, "description": ""},
    )
    assert created.status_code == 201, created.text
    client = await asgi_api.client()

    for servers in ([NATS_URL], [f"$var:{variable}"]):
        passed = await test_nats_connection.asyncio_detailed(
            WS, client=client, json_body=nats_body({"servers": servers})
        )
        assert passed.status_code == 200, passed.content
        assert passed.content == b""


async def test_nats_servers_nobody_listens_on_fail_at_once_without_credentials(
    asgi_api: Api,
) -> None:
    nats_address()
    address = closed_address()
    client = await asgi_api.client()

    async with quickly():
        failed = await test_nats_connection.asyncio_detailed(
            WS,
            client=client,
            json_body=nats_body({"servers": [f"nats://watcher:hunter2@{address}"]}),
        )
    error = refusal(failed.status_code, failed.content)
    assert f"nats://{address}" in error["reason"]
    assert b"hunter2" not in failed.content


async def test_an_unusable_nats_connection_is_refused_naming_the_field(asgi_api: Api) -> None:
    client = await asgi_api.client()
    failed = await test_nats_connection.asyncio_detailed(
        WS, client=client, json_body=nats_body({"servers": []})
    )
    assert refusal(failed.status_code, failed.content)["field"] == "connection.servers"


# MQTT -------------------------------------------------------------------------------------------


async def test_an_mqtt_broker_that_answers_passes_with_either_version(asgi_api: Api) -> None:
    host, port = mqtt_address()
    path = await add_resource(asgi_api, "mqtt", {"broker": host, "port": port})

    for body in (
        {"connection": {"broker": host, "port": port}},
        {"connection": {"broker": host, "port": port, "client_version": "v3"}},
        {"connection": {"mqtt_resource_path": path, "client_version": "v5"}},
    ):
        passed = await answer_of(asgi_api, "mqtt", body)
        assert passed.status_code == 200, passed.text
        assert passed.content == b""


async def test_an_mqtt_broker_nobody_listens_on_fails_at_once_naming_it(asgi_api: Api) -> None:
    mqtt_address()
    port = free_port()
    async with quickly():
        failed = await answer_of(
            asgi_api, "mqtt", {"connection": {"broker": "127.0.0.1", "port": port}}
        )
    assert f"127.0.0.1:{port}" in refusal(failed.status_code, failed.content)["reason"]


async def test_an_unusable_mqtt_connection_is_refused_naming_the_field(asgi_api: Api) -> None:
    port = await answer_of(asgi_api, "mqtt", {"connection": {"broker": "127.0.0.1", "port": 70000}})
    assert refusal(port.status_code, port.content)["field"] == "connection.port"
    version = await answer_of(
        asgi_api, "mqtt", {"connection": {"broker": "127.0.0.1", "client_version": "v4"}}
    )
    assert refusal(version.status_code, version.content)["field"] == "connection.client_version"


async def test_a_broker_that_never_answers_times_out_naming_it(
    asgi_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts the connection and never answers CONNECT
        writer.close()

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    monkeypatch.setattr(connection_tests, "TIMEOUT_S", 0.5)
    try:
        async with quickly():
            failed = await answer_of(
                asgi_api, "mqtt", {"connection": {"broker": "127.0.0.1", "port": port}}
            )
    finally:
        silent.close()
    reason = refusal(failed.status_code, failed.content)["reason"]
    assert reason.startswith("Timeout connecting to service after 0.5 seconds")
    assert f"127.0.0.1:{port}" in reason


# SQS --------------------------------------------------------------------------------------------


def aws_resource(endpoint: str = SQS_ENDPOINT) -> dict[str, Any]:
    """An `aws` resource reaching `endpoint` (moto accepts any key)."""
    return {
        "awsAccessKeyId": "testing",
        "awsSecretAccessKey": "testing-secret",
        "region": "us-east-1",
        "endpoint_url": endpoint,
    }


async def new_queue() -> str:
    """A new queue on the test SQS server; its URL. Skips (fails under CI) when it is absent."""
    try:
        async with httpx.AsyncClient(timeout=3) as http:
            await http.get(f"{SQS_ENDPOINT}/moto-api/")
    except httpx.HTTPError as exc:
        service_missing(f"SQS at {SQS_ENDPOINT}", str(exc))
    async with get_session().create_client(
        "sqs",
        region_name="us-east-1",
        endpoint_url=SQS_ENDPOINT,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ) as sqs:
        created = await sqs.create_queue(QueueName=unique("test-"))
    url: str = created["QueueUrl"]
    return url


async def test_sqs_passes_with_a_queue_or_without(asgi_api: Api) -> None:
    queue_url = await new_queue()
    path = await add_resource(asgi_api, "aws", aws_resource())
    client = await asgi_api.client()

    for connection in (
        {"aws_resource_path": path, "queue_url": queue_url},
        {**aws_resource(), "queue_url": queue_url},
        aws_resource(),
    ):
        passed = await test_sqs_connection.asyncio_detailed(
            WS,
            client=client,
            json_body=SqsBody.from_dict({"connection": connection}),
        )
        assert passed.status_code == 200, passed.content
        assert passed.content == b""


async def test_sqs_refuses_a_queue_that_does_not_exist_naming_it(asgi_api: Api) -> None:
    queue_url = await new_queue()
    missing = queue_url.rsplit("/", 1)[0] + "/" + unique("missing-")
    failed = await answer_of(
        asgi_api, "sqs", {"connection": {**aws_resource(), "queue_url": missing}}
    )
    assert missing in refusal(failed.status_code, failed.content)["reason"]


async def test_an_sqs_endpoint_nobody_listens_on_fails_at_once_naming_it(asgi_api: Api) -> None:
    await new_queue()
    endpoint = f"http://{closed_address()}"
    async with quickly():
        failed = await answer_of(asgi_api, "sqs", {"connection": aws_resource(endpoint)})
    assert endpoint in refusal(failed.status_code, failed.content)["reason"]
    assert b"testing-secret" not in failed.content


async def test_an_unusable_sqs_connection_is_refused_naming_the_field(asgi_api: Api) -> None:
    keyless = {key: value for key, value in aws_resource().items() if key != "awsSecretAccessKey"}
    failed = await answer_of(asgi_api, "sqs", {"connection": keyless})
    assert refusal(failed.status_code, failed.content)["field"] == ("connection.awsSecretAccessKey")
    url = await answer_of(asgi_api, "sqs", {"connection": {**aws_resource(), "queue_url": "queue"}})
    assert refusal(url.status_code, url.content)["field"] == "connection.queue_url"


# GCP Pub/Sub ------------------------------------------------------------------------------------


@asynccontextmanager
async def pubsub(project: str) -> AsyncIterator[PubSubClients]:
    """Clients of the Pub/Sub emulator; skips (fails under CI) when it does not answer."""
    host, _, port = PUBSUB_HOST.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as exc:
        service_missing(f"the Pub/Sub emulator at {PUBSUB_HOST}", str(exc))
    clients = await PubSubClients.open(
        parse_gcp_resource({"project_id": project, "emulator_host": PUBSUB_HOST})
    )
    try:
        yield clients
    finally:
        await clients.close()


async def test_pubsub_passes_with_a_topic_or_without(asgi_api: Api) -> None:
    project = unique("project-")
    topic = unique("topic-")
    async with pubsub(project) as clients:
        await clients.publisher.create_topic(name=f"projects/{project}/topics/{topic}")
    resource = {"project_id": project, "emulator_host": PUBSUB_HOST}
    path = await add_resource(asgi_api, "gcloud", resource)

    for connection in (
        {**resource, "topic_id": topic},
        {"gcp_resource_path": path, "topic_id": f"projects/{project}/topics/{topic}"},
        resource,
    ):
        passed = await answer_of(asgi_api, "gcp", {"connection": connection})
        assert passed.status_code == 200, passed.text
        assert passed.content == b""


async def test_pubsub_refuses_a_topic_that_does_not_exist(asgi_api: Api) -> None:
    project = unique("project-")
    async with pubsub(project):
        pass
    failed = await answer_of(
        asgi_api,
        "gcp",
        {"connection": {"project_id": project, "emulator_host": PUBSUB_HOST, "topic_id": "gone"}},
    )
    error = refusal(failed.status_code, failed.content)
    assert error["field"] == "connection.topic_id"
    assert f"projects/{project}/topics/gone does not exist" in error["reason"]


async def test_a_pubsub_host_nobody_listens_on_fails_at_once_naming_it(asgi_api: Api) -> None:
    async with pubsub(unique("project-")):
        pass
    host = closed_address()
    async with quickly():
        failed = await answer_of(
            asgi_api, "gcp", {"connection": {"project_id": "p-1", "emulator_host": host}}
        )
    assert host in refusal(failed.status_code, failed.content)["reason"]


async def test_an_unusable_pubsub_connection_is_refused_naming_the_field(asgi_api: Api) -> None:
    failed = await answer_of(asgi_api, "gcp", {"connection": {"project_id": "p-1"}})
    assert refusal(failed.status_code, failed.content)["field"] == "connection.client_email"


# PostgreSQL -------------------------------------------------------------------------------------


async def test_a_database_with_logical_wal_passes(asgi_api: Api) -> None:
    await (await cdc_connect()).close()
    path = await add_resource(asgi_api, "postgresql", cdc_resource())
    client = await asgi_api.client()

    passed = await test_postgres_connection.asyncio_detailed(
        WS, client=client, json_body=PostgresBody(database=path)
    )
    assert passed.status_code == 200, passed.content
    assert passed.content == b""
    older = await answer_of(asgi_api, "postgres", {"postgres_resource_path": path})
    assert older.status_code == 200, older.text


async def test_a_database_without_logical_wal_is_refused_saying_why(asgi_api: Api) -> None:
    import psycopg

    try:
        async with await psycopg.AsyncConnection.connect(
            POSTGRES_ADMIN_URL, connect_timeout=3
        ) as conn:
            level = await (await conn.execute("SHOW wal_level")).fetchone()
    except psycopg.OperationalError as exc:
        service_missing(f"PostgreSQL at {POSTGRES_ADMIN_URL}", str(exc).strip())
    if level is not None and level[0] == "logical":
        pytest.skip(f"{POSTGRES_ADMIN_URL} has wal_level = logical: nothing to refuse")
    parts = httpx.URL(POSTGRES_ADMIN_URL)
    resource = {
        "host": parts.host,
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "password": parts.password or "",
        "dbname": parts.path.lstrip("/") or "postgres",
        "sslmode": "disable",
    }
    path = await add_resource(asgi_api, "postgresql", resource)

    failed = await answer_of(asgi_api, "postgres", {"database": path})
    error = refusal(failed.status_code, failed.content)
    assert error["field"] == "database"
    assert "wal_level = logical" in error["reason"]


async def test_a_database_nobody_listens_on_fails_at_once_naming_it(asgi_api: Api) -> None:
    port = free_port()
    resource = {**cdc_resource(), "host": "127.0.0.1", "port": port}
    path = await add_resource(asgi_api, "postgresql", resource)
    async with quickly():
        failed = await answer_of(asgi_api, "postgres", {"database": path})
    assert f"127.0.0.1:{port}" in refusal(failed.status_code, failed.content)["reason"]


async def test_an_unusable_postgres_resource_is_refused_naming_the_field(asgi_api: Api) -> None:
    path = await add_resource(asgi_api, "postgresql", {"user": "postgres", "dbname": "postgres"})
    failed = await answer_of(asgi_api, "postgres", {"database": path})
    error = refusal(failed.status_code, failed.content)
    assert error["field"] == "resource.host"
    assert path in error["reason"]


# WebSocket --------------------------------------------------------------------------------------


def websocket_body(url: str) -> WebsocketBody:
    """The client's body of `test_websocket_connection`."""
    return WebsocketBody(url=url, can_return_message=False)


async def test_a_websocket_server_that_answers_passes(asgi_api: Api) -> None:
    async def wait(connection: ServerConnection) -> None:
        await connection.wait_closed()

    client = await asgi_api.client()
    async with serve(wait, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        passed = await test_websocket_connection.asyncio_detailed(
            WS, client=client, json_body=websocket_body(f"ws://127.0.0.1:{port}/feed")
        )
    assert passed.status_code == 200, passed.content
    assert passed.content == b""


async def test_a_computed_websocket_url_is_not_tested(asgi_api: Api) -> None:
    client = await asgi_api.client()
    refused = await test_websocket_connection.asyncio_detailed(
        WS, client=client, json_body=websocket_body("$script:f/t/hello")
    )
    error = refusal(refused.status_code, refused.content)
    assert error == {
        "field": "url",
        "reason": "computed URLs cannot be tested without running the script",
    }


async def test_a_websocket_server_nobody_listens_on_fails_at_once_naming_it(
    asgi_api: Api,
) -> None:
    address = closed_address()
    async with quickly():
        failed = await answer_of(
            asgi_api,
            "websocket",
            {"url": f"ws://{address}/feed?token=hunter2", "can_return_message": False},
        )
    error = refusal(failed.status_code, failed.content)
    assert f"ws://{address}/feed" in error["reason"]
    assert b"hunter2" not in failed.content
    scheme = await answer_of(asgi_api, "websocket", {"url": f"http://{address}"})
    assert refusal(scheme.status_code, scheme.content)["field"] == "url"


# Who may test -----------------------------------------------------------------------------------


async def test_a_test_needs_the_write_scope_of_its_kind(asgi_api: Api) -> None:
    reader = await asgi_api.http(await asgi_api.token_for(OWNER, scopes=["nats_triggers:read"]))
    body = {"connection": {"servers": [f"nats://{closed_address()}"]}}
    assert (await reader.post(f"/w/{WS}/nats_triggers/test", json=body)).status_code == 403


async def test_a_resource_the_caller_cannot_see_is_not_used(asgi_api: Api) -> None:
    path = await add_resource(asgi_api, "nats", {"servers": [f"nats://{closed_address()}"]})
    await add_user(asgi_api, BOB)
    bob = await asgi_api.http(await asgi_api.token_for(BOB))
    failed = await bob.post(
        f"/w/{WS}/nats_triggers/test", json={"connection": {"nats_resource_path": path}}
    )
    error = refusal(failed.status_code, failed.content)
    assert error["field"] == "connection.nats_resource_path"
    assert "no resource at path" in error["reason"]

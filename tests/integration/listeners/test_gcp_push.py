"""The GCP push endpoint on a real store: tokens (valid, wrong audience, expired, none), body
shapes, dedup by message id, refusals, a failing store, and the emulator pushing over loopback.

Tokens are signed with an RSA key made for the test run, which the endpoint is given as its key
source in place of Google's certificate endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from google.pubsub_v1 import types
from starlette.applications import Starlette

from gateway.http_routes.server import server_config
from gateway.jobs.read import JobFilter, get_job, list_jobs
from gateway.listeners.gcp import GcpOptions, PubSubClients, listener_factory
from gateway.listeners.gcp_config import parse_resource
from gateway.listeners.gcp_oidc import StaticKeys
from gateway.listeners.gcp_push import build_routes
from gateway.listeners.lease import Lease, TriggerRef
from gateway.store import Json, Store
from gateway.store.trigger_tables import COLUMN_DEFAULTS, TRIGGER_TABLES
from gateway.triggers.quarantine import list_quarantined_events

from ...conftest import service_missing
from ..support import OWNER, WS, add_scripts, eventually
from .brokers import WAIT_S, free_port, store_with_resources, unique

pytestmark = pytest.mark.integration

PUBSUB_HOST = os.environ.get("GATEWAY_TEST_PUBSUB", "127.0.0.1:28085")
RESOURCE_PATH = "u/alice/gcloud"
EMAIL = "pusher@gw-test.iam.gserviceaccount.com"
AUDIENCE = "https://gateway.example/push"
BASE_URL = "http://gateway.test"
KID = "test-key"
SUBSCRIPTION = "projects/gw-test/subscriptions/orders"
ECHO = "def main(payload: str):\n    return payload\n"
PRE = "def preprocessor(event):\n    return event\n\n\ndef main(event):\n    return event\n"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    """The key the tests sign tokens with."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def token(key: rsa.RSAPrivateKey, kid: str = KID, **claims: Any) -> str:
    """A push token as Google signs it, with `claims` overriding the valid ones."""
    now = int(time.time())
    body = {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 3600,
        "email": EMAIL,
        "email_verified": True,
        "sub": "1234567890",
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


def envelope(data: bytes, message_id: str, **message: Any) -> dict[str, Any]:
    """A wrapped push body, as Pub/Sub sends it."""
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "messageId": message_id,
            "message_id": message_id,
            "publishTime": "2026-11-26T19:13:55.749Z",
            "publish_time": "2026-11-26T19:13:55.749Z",
            **message,
        },
        "subscription": SUBSCRIPTION,
    }


async def add_push_trigger(
    store: Store,
    *,
    delivery_config: dict[str, Any],
    mode: str = "enabled",
    resource: dict[str, Any] | None = None,
    **columns: Any,
) -> TriggerRef:
    """A push `gcp_trigger` on script `f/t/echo` and its resource, as the API writes them."""
    trigger = TriggerRef("gcp", WS, f"u/alice/{unique('push_')}")
    values = {
        **{c: COLUMN_DEFAULTS.get(c) for c in TRIGGER_TABLES["gcp"].writable_columns},
        "path": trigger.path,
        "script_path": "f/t/echo",
        "is_flow": False,
        "workspace_id": WS,
        "edited_by": OWNER.username,
        "email": OWNER.email,
        "permissioned_as": OWNER.permissioned_as,
        "gcp_resource_path": RESOURCE_PATH,
        "topic_id": "orders",
        "subscription_id": "orders",
        "delivery_type": "push",
        "delivery_config": delivery_config,
        "mode": mode,
        **columns,
    }
    values.pop("edited_at")
    if resource is None:
        resource = {"project_id": "gw-test", "emulator_host": PUBSUB_HOST, "client_email": EMAIL}
    async with store.transaction() as tx:
        await tx.execute("upsert_gcp_trigger", **values)
        await tx.execute(
            "upsert_resource",
            workspace_id=WS,
            path=RESOURCE_PATH,
            value=Json(resource),
            description="",
            resource_type="gcloud",
            created_by=OWNER.username,
        )
    return trigger


@asynccontextmanager
async def gateway_client(store: Store, key: rsa.RSAPrivateKey) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of an app serving only the push route, in process."""
    app = Starlette(routes=build_routes(store, StaticKeys({KID: key.public_key()})))
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


def push_url(trigger: TriggerRef) -> str:
    """The trigger's push path."""
    return f"/api/gcp/w/{trigger.workspace_id}/{trigger.path}"


async def jobs_of(store: Store, trigger: TriggerRef) -> list[dict[str, Any]]:
    """The trigger's jobs."""
    return await list_jobs(store, WS, JobFilter(trigger=trigger.path, per_page=100))


AUTHENTICATED = {"authenticate": True, "audience": AUDIENCE}


async def test_a_push_with_a_valid_token_becomes_one_job(
    store: Store, signing_key: rsa.RSAPrivateKey
) -> None:
    await add_scripts(store, echo=ECHO)
    trigger = await add_push_trigger(store, delivery_config=AUTHENTICATED)
    body = envelope(b'{"a":1}', "m-1", attributes={"region": "eu"}, orderingKey="k")
    headers = {"Authorization": f"Bearer {token(signing_key)}"}

    async with gateway_client(store, signing_key) as client:
        first = await client.post(push_url(trigger), json=body, headers=headers)
        again = await client.post(push_url(trigger), json=body, headers=headers)

    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    [job] = await jobs_of(store, trigger)
    assert job["id"] == first.json()["job_id"]
    assert job["args"] == {"payload": "eyJhIjoxfQ=="}
    assert (job["trigger"], job["trigger_kind"]) == (trigger.path, "gcp")


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "https://elsewhere.example/push"}, "not for audience"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "expired"),
        ({"email": "intruder@example.com"}, "issued for 'intruder@example.com'"),
        ({"email_verified": False}, "not verified"),
        ({"iss": "https://issuer.example"}, "not issued by Google"),
    ],
)
async def test_a_push_with_a_bad_token_is_refused(
    store: Store, signing_key: rsa.RSAPrivateKey, claims: dict[str, Any], reason: str
) -> None:
    await add_scripts(store, echo=ECHO)
    trigger = await add_push_trigger(store, delivery_config=AUTHENTICATED)
    headers = {"Authorization": f"Bearer {token(signing_key, **claims)}"}

    async with gateway_client(store, signing_key) as client:
        answer = await client.post(push_url(trigger), json=envelope(b"x", "m-1"), headers=headers)

    assert answer.status_code == 401
    assert reason in answer.json()["error"]
    assert await jobs_of(store, trigger) == []


async def test_a_push_without_a_token_or_signed_by_another_key_is_refused(
    store: Store, signing_key: rsa.RSAPrivateKey
) -> None:
    await add_scripts(store, echo=ECHO)
    trigger = await add_push_trigger(store, delivery_config=AUTHENTICATED)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    async with gateway_client(store, signing_key) as client:
        none = await client.post(push_url(trigger), json=envelope(b"x", "m-1"))
        forged = await client.post(
            push_url(trigger),
            json=envelope(b"x", "m-1"),
            headers={"Authorization": f"Bearer {token(stranger)}"},
        )
        unknown_key = await client.post(
            push_url(trigger),
            json=envelope(b"x", "m-1"),
            headers={"Authorization": f"Bearer {token(signing_key, kid='other')}"},
        )

    assert none.status_code == forged.status_code == unknown_key.status_code == 401
    assert "no bearer token" in none.json()["error"]
    assert "does not verify" in forged.json()["error"]
    assert "no key with id 'other'" in unknown_key.json()["error"]
    assert await jobs_of(store, trigger) == []


async def test_the_default_audience_is_the_url_pushed_to(
    store: Store, signing_key: rsa.RSAPrivateKey
) -> None:
    await add_scripts(store, echo=ECHO)
    trigger = await add_push_trigger(store, delivery_config={"authenticate": True})
    url = BASE_URL + push_url(trigger)

    async with gateway_client(store, signing_key) as client:
        answer = await client.post(
            push_url(trigger),
            json=envelope(b"x", "m-1"),
            headers={"Authorization": f"Bearer {token(signing_key, aud=url)}"},
        )

    assert answer.status_code == 200, answer.text


async def test_an_unwrapped_push_takes_its_metadata_from_the_headers(
    store: Store, signing_key: rsa.RSAPrivateKey
) -> None:
    await add_scripts(store, echo=ECHO, pre=PRE)
    trigger = await add_push_trigger(
        store, delivery_config={"authenticate": False}, script_path="f/t/pre"
    )
    headers = {
        "x-goog-pubsub-message-id": "m-7",
        "x-goog-pubsub-subscription-name": SUBSCRIPTION,
        "x-goog-pubsub-publish-time": "2026-11-26T19:13:55.749Z",
        "x-goog-pubsub-ordering-key": "k",
        "Authorization": "Bearer not-checked-here",
    }

    async with gateway_client(store, signing_key) as client:
        answer = await client.post(push_url(trigger), content=b"\xffraw bytes", headers=headers)
        again = await client.post(push_url(trigger), content=b"\xffraw bytes", headers=headers)

    assert answer.status_code == 200, answer.text
    assert again.json() == answer.json()
    job = await get_job(store, WS, answer.json()["job_id"])
    event = job["args"]["event"]
    assert event["payload"] == base64.b64encode(b"\xffraw bytes").decode()
    assert (event["kind"], event["delivery_type"]) == ("gcp", "push")
    assert (event["message_id"], event["subscription"]) == ("m-7", SUBSCRIPTION)
    assert (event["ordering_key"], event["publish_time"]) == ("k", "2026-11-26T19:13:55.749Z")
    assert event["headers"]["x-goog-pubsub-message-id"] == "m-7"
    assert "authorization" not in event["headers"]


async def test_a_wrapped_push_gives_windmills_trigger_info(
    store: Store, signing_key: rsa.RSAPrivateKey
) -> None:
    await add_scripts(store, pre=PRE)
    trigger = await add_push_trigger(
        store, delivery_config={"authenticate": False}, script_path="f/t/pre"
    )
    body = envelope(b"hello", "m-9", attributes={"region": "eu"})

    async with gateway_client(store, signing_key) as client:
        answer = await client.post(push_url(trigger), json=body)

    job = await get_job(store, WS, answer.json()["job_id"])
    event = job["args"]["event"]
    assert event["payload"] == "aGVsbG8="
    assert (event["message_id"], event["subscription"]) == ("m-9", SUBSCRIPTION)
    assert event["attributes"] == {"region": "eu"}
    assert event["publish_time"] == "2026-11-26T19:13:55.749Z"
    assert event["delivery_type"] == "push"
    assert event["headers"]["content-type"] == "application/json"


async def test_bodies_and_triggers_that_cannot_be_served_are_refused(
    store: Store, signing_key: rsa.RSAPrivateKey
) -> None:
    await add_scripts(store, echo=ECHO)
    open_trigger = await add_push_trigger(store, delivery_config={"authenticate": False})
    disabled = await add_push_trigger(
        store, delivery_config={"authenticate": False}, mode="disabled"
    )
    pulling = await add_push_trigger(
        store, delivery_config={"authenticate": False}, delivery_type="pull"
    )

    async with gateway_client(store, signing_key) as client:
        not_json = await client.post(push_url(open_trigger), content=b"\xff not json")
        bad_data = await client.post(
            push_url(open_trigger), json={"message": {"data": "%%%"}, "subscription": "s"}
        )
        missing = await client.post("/api/gcp/w/test/u/alice/nothing", json=envelope(b"x", "1"))
        off = await client.post(push_url(disabled), json=envelope(b"x", "1"))
        pull = await client.post(push_url(pulling), json=envelope(b"x", "1"))

    assert (not_json.status_code, bad_data.status_code) == (400, 400)
    assert (missing.status_code, off.status_code, pull.status_code) == (404, 503, 400)
    for trigger in (open_trigger, disabled, pulling):
        assert await jobs_of(store, trigger) == []


async def test_a_push_whose_job_cannot_be_built_is_quarantined_and_acked(
    store: Store, signing_key: rsa.RSAPrivateKey
) -> None:
    await add_scripts(store, echo=ECHO)
    trigger = await add_push_trigger(
        store, delivery_config={"authenticate": False}, script_path="f/t/missing"
    )

    async with gateway_client(store, signing_key) as client:
        answer = await client.post(push_url(trigger), json=envelope(b"x", "m-1"))

    assert answer.status_code == 200
    assert "quarantined" in answer.json()
    [kept] = await list_quarantined_events(store, WS, trigger_kind="gcp")
    assert (kept.trigger_path, kept.dedup_key, kept.raw) == (trigger.path, "m-1", b"x")


async def test_a_failing_store_answers_503_so_that_pubsub_retries(
    tmp_path: Path, signing_key: rsa.RSAPrivateKey
) -> None:
    async with store_with_resources(tmp_path, {}) as store:
        await add_scripts(store, echo=ECHO)
        trigger = await add_push_trigger(store, delivery_config={"authenticate": False})
        async with gateway_client(store, signing_key) as client:
            await store.close()
            answer = await client.post(push_url(trigger), json=envelope(b"x", "m-1"))

    assert answer.status_code == 503
    assert "store failed" in answer.json()["error"]


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[int]:
    """`app` on a loopback port; the port."""
    port = free_port()
    server = uvicorn.Server(server_config(app, "127.0.0.1", port))
    task = asyncio.create_task(server.serve(), name="test-push-server")
    try:
        while not server.started:
            if task.done():
                await task
            await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def emulator_host() -> Iterator[str]:
    """The Pub/Sub emulator's address; skips (fails under CI) when it does not answer."""
    host, _, port = PUBSUB_HOST.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as exc:
        service_missing(f"the Pub/Sub emulator at {PUBSUB_HOST}", str(exc))
    yield PUBSUB_HOST


async def test_the_emulator_pushes_to_the_endpoint_over_loopback(
    tmp_path: Path, signing_key: rsa.RSAPrivateKey, emulator_host: str
) -> None:
    project, topic = unique("p"), unique("topic-")
    resource = {"project_id": project, "emulator_host": emulator_host}
    async with store_with_resources(tmp_path, {}) as store:
        await add_scripts(store, echo=ECHO)
        trigger = await add_push_trigger(
            store,
            delivery_config={"authenticate": False},
            resource=resource,
            topic_id=topic,
            subscription_id=unique("sub-"),
        )
        async with store.transaction() as tx:
            row = await tx.fetch_one("get_gcp_trigger", workspace_id=WS, path=trigger.path)
        assert row is not None
        clients = await PubSubClients.open(parse_resource(resource))
        app = Starlette(routes=build_routes(store, StaticKeys({KID: signing_key.public_key()})))
        try:
            await clients.publisher.create_topic(name=f"projects/{project}/topics/{topic}")
            async with serving(app) as port:
                options = GcpOptions(push_base_url=f"http://127.0.0.1:{port}")
                # The push trigger's lease holder points the subscription at the gateway.
                watch = listener_factory(store, options)(Lease(trigger, "gw-a", row))
                try:
                    await watch.connect()
                finally:
                    await watch.close()
                await clients.publisher.publish(
                    topic=f"projects/{project}/topics/{topic}",
                    messages=[types.PubsubMessage(data=b"pushed")],
                )
                [job] = await eventually(lambda: jobs_of(store, trigger), timeout_s=WAIT_S)
        finally:
            await clients.close()

    assert job["args"] == {"payload": base64.b64encode(b"pushed").decode()}

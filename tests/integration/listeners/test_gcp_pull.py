"""The GCP Pub/Sub pull listener against the Pub/Sub emulator through the unmodified client:
events and args, acks and nacks, redelivery after a lost ack, subscription management.

Endpoint: `GATEWAY_TEST_PUBSUB` (default ``127.0.0.1:28085``). Each test uses a project, topics
and subscriptions of its own.
"""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from google.pubsub_v1 import types

from gateway.listeners.base import Batch
from gateway.listeners.gcp import (
    GcpOptions,
    GcpPullListener,
    GcpPushWatch,
    PubSubClients,
    SubscriptionMismatch,
    listener_factory,
)
from gateway.listeners.gcp_config import parse_resource
from gateway.listeners.lease import Lease, TriggerRef
from gateway.listeners.sql_lease_store import SqlLeaseStore
from gateway.resources import resource_value
from gateway.store import Json, Store
from gateway.store.trigger_tables import COLUMN_DEFAULTS, TRIGGER_TABLES
from gateway.triggers.args import RunnableShape, build_args
from gateway.triggers.event import Event
from gateway.triggers.pipeline import TriggerJobSink

from ...conftest import service_missing
from ..support import OWNER, WS, add_scripts
from .brokers import events_until, lease_of, next_batch, store_with_resources, unique

pytestmark = pytest.mark.integration

HOST = os.environ.get("GATEWAY_TEST_PUBSUB", "127.0.0.1:28085")
RESOURCE_PATH = "u/alice/gcloud"
FAST = GcpOptions(max_messages=10, pull_timeout_s=5, recheck_interval_s=1)
ECHO = "def main(payload: str):\n    return payload\n"


def emulator_resource(project: str) -> dict[str, Any]:
    """A `gcloud` resource of `project` on the emulator."""
    return {"project_id": project, "emulator_host": HOST}


@asynccontextmanager
async def emulator(project: str) -> AsyncIterator[PubSubClients]:
    """Clients of the emulator; skips (fails under CI) when it does not answer."""
    host, _, port = HOST.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as exc:
        service_missing(f"the Pub/Sub emulator at {HOST}", str(exc))
    clients = await PubSubClients.open(parse_resource(emulator_resource(project)))
    try:
        yield clients
    finally:
        await clients.close()


async def new_topic(clients: PubSubClients, project: str) -> str:
    """A new topic's id."""
    topic = unique("topic-")
    await clients.publisher.create_topic(name=f"projects/{project}/topics/{topic}")
    return topic


async def publish(
    clients: PubSubClients, project: str, topic: str, *data: bytes, **attributes: str
) -> list[str]:
    """Publish each payload with the attributes; the message ids."""
    response = await clients.publisher.publish(
        topic=f"projects/{project}/topics/{topic}",
        messages=[types.PubsubMessage(data=d, attributes=attributes) for d in data],
    )
    return list(response.message_ids)


def gcp_lease(topic: str, subscription: str, **row: Any) -> Lease:
    """A lease on a new pull trigger of the topic and subscription."""
    return lease_of(
        "gcp",
        gcp_resource_path=RESOURCE_PATH,
        topic_id=topic,
        subscription_id=subscription,
        **row,
    )


def pull_listener(store: Store, lease: Lease, options: GcpOptions = FAST) -> GcpPullListener:
    """A pull listener of `lease` reading its resource from `store`, as the factory builds it."""
    return GcpPullListener(lease, partial(resource_value, store), options)


@asynccontextmanager
async def listening(listener: GcpPullListener) -> AsyncIterator[AsyncIterator[Batch]]:
    """The connected listener's batches; closed (without acking anything) at the end."""
    await listener.connect()
    stream = listener.consume()
    try:
        yield stream
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
        await listener.close()


def message_ids(batches: list[Batch]) -> list[str]:
    """The message ids of every event of the batches."""
    return [event.info["message_id"] for batch in batches for event in batch.events]


async def test_pulled_messages_become_events_with_attributes_and_args(tmp_path: Path) -> None:
    project = unique("p")
    async with emulator(project) as clients:
        topic = await new_topic(clients, project)
        async with store_with_resources(
            tmp_path, {RESOURCE_PATH: ("gcloud", emulator_resource(project))}
        ) as store:
            listener = pull_listener(store, gcp_lease(topic, unique("sub-")))
            async with listening(listener) as stream:
                [sent] = await publish(clients, project, topic, b'{"a":1}', region="eu")
                batch = await next_batch(stream)
                await listener.ack(batch)
                await listener.ack(batch)

    [event] = batch.events
    subscription = listener.subscription
    assert subscription.startswith(f"projects/{project}/subscriptions/sub-")
    assert (event.kind, event.raw, event.dedup_key) == ("gcp", b'{"a":1}', sent)
    assert event.payload == base64.b64encode(b'{"a":1}').decode()
    assert event.info["message_id"] == sent
    assert event.info["subscription"] == subscription
    assert event.info["attributes"] == {"region": "eu"}
    assert event.info["delivery_type"] == "pull"
    assert event.info["publish_time"].endswith("Z")
    assert "ack_id" not in event.info
    assert build_args(event, RunnableShape()) == {"payload": "eyJhIjoxfQ=="}
    preprocessed = build_args(event, RunnableShape(has_preprocessor=True))["event"]
    assert (preprocessed["kind"], preprocessed["message_id"]) == ("gcp", sent)


async def test_a_nacked_batch_is_redelivered_at_once(tmp_path: Path) -> None:
    project = unique("p")
    async with emulator(project) as clients:
        topic = await new_topic(clients, project)
        async with store_with_resources(
            tmp_path, {RESOURCE_PATH: ("gcloud", emulator_resource(project))}
        ) as store:
            # A deadline far longer than the test: only the nack can bring them back.
            listener = pull_listener(store, gcp_lease(topic, unique("sub-"), ack_deadline=600))
            async with listening(listener) as stream:
                sent = await publish(clients, project, topic, b"a", b"b")
                first = await events_until(stream, 2)
                for batch in first:
                    await listener.nack(batch)
                again = await events_until(stream, 2)
                for batch in again:
                    await listener.ack(batch)

    assert sorted(message_ids(first)) == sorted(message_ids(again)) == sorted(sent)


async def test_an_acked_batch_is_not_delivered_again(tmp_path: Path) -> None:
    project = unique("p")
    async with emulator(project) as clients:
        topic = await new_topic(clients, project)
        async with store_with_resources(
            tmp_path, {RESOURCE_PATH: ("gcloud", emulator_resource(project))}
        ) as store:
            lease = gcp_lease(topic, unique("sub-"), ack_deadline=10)
            listener = pull_listener(store, lease)
            async with listening(listener) as stream:
                [first] = await publish(clients, project, topic, b"first")
                await listener.nack(await next_batch(stream))
                await listener.ack(await next_batch(stream))
                [second] = await publish(clients, project, topic, b"second")
                after = await next_batch(stream)
                await listener.ack(after)

    assert message_ids([after]) == [second] != [first]


async def add_gcp_trigger(store: Store, project: str, topic: str, **columns: Any) -> TriggerRef:
    """A pull `gcp_trigger` row on script `f/t/echo`, as the API writes it, and its resource."""
    trigger = TriggerRef("gcp", WS, f"u/alice/{unique('gcp_')}")
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
        "topic_id": topic,
        "subscription_id": unique("sub-"),
        "delivery_type": "pull",
        **columns,
    }
    values.pop("edited_at")
    async with store.transaction() as tx:
        await tx.execute("upsert_gcp_trigger", **values)
        await tx.execute(
            "upsert_resource",
            workspace_id=WS,
            path=RESOURCE_PATH,
            value=Json(emulator_resource(project)),
            description="",
            resource_type="gcloud",
            created_by=OWNER.username,
        )
    return trigger


async def test_a_lost_ack_is_redelivered_after_the_deadline_to_the_same_job(
    store: Store,
) -> None:
    await add_scripts(store, echo=ECHO)
    project = unique("p")
    async with emulator(project) as clients:
        topic = await new_topic(clients, project)
        await add_gcp_trigger(store, project, topic, ack_deadline=10)
        [lease] = await SqlLeaseStore(store).claim_stale("gcp", "gw-a", 15.0)
        sink = TriggerJobSink(store)
        build = listener_factory(store, FAST)

        first = build(lease)
        assert isinstance(first, GcpPullListener)
        committed: dict[str, UUID] = {}
        async with listening(first) as stream:
            sent = await publish(clients, project, topic, b"a", b"b")
            while len(committed) < len(sent):
                batch = await next_batch(stream)
                job_ids = await sink.submit(lease, batch.events)
                committed.update(zip(events_ids(batch.events), job_ids, strict=True))
            # The jobs are committed; the ack is lost with the process.

        second = build(lease)
        assert isinstance(second, GcpPullListener)
        redelivered: dict[str, UUID] = {}
        async with listening(second) as stream:
            while len(redelivered) < len(sent):
                batch = await next_batch(stream)
                job_ids = await sink.submit(lease, batch.events)
                redelivered.update(zip(events_ids(batch.events), job_ids, strict=True))
                await second.ack(batch)

    assert sorted(committed) == sorted(sent)
    assert redelivered == committed


def events_ids(events: Sequence[Event]) -> list[str]:
    """The message ids of the events."""
    return [event.info["message_id"] for event in events]


async def test_without_auto_acknowledge_the_gateway_leaves_messages_to_their_deadline(
    tmp_path: Path,
) -> None:
    project = unique("p")
    async with emulator(project) as clients:
        topic = await new_topic(clients, project)
        async with store_with_resources(
            tmp_path, {RESOURCE_PATH: ("gcloud", emulator_resource(project))}
        ) as store:
            lease = gcp_lease(topic, unique("sub-"), ack_deadline=10, auto_acknowledge_msg=False)
            listener = pull_listener(store, lease)
            async with listening(listener) as stream:
                [sent] = await publish(clients, project, topic, b"manual")
                first = await next_batch(stream)
                await listener.ack(first)
                again = await next_batch(stream)
                # The runnable acknowledges it with the ack id it was given.
                [event] = again.events
                await clients.subscriber.acknowledge(
                    subscription=listener.subscription, ack_ids=[event.info["ack_id"]]
                )
                await listener.ack(again)

    assert message_ids([first]) == message_ids([again]) == [sent]


async def subscription_of(clients: PubSubClients, project: str, name: str) -> types.Subscription:
    """The subscription as Pub/Sub has it."""
    return await clients.subscriber.get_subscription(
        subscription=f"projects/{project}/subscriptions/{name}"
    )


async def connect_once(store: Store, lease: Lease, options: GcpOptions = FAST) -> None:
    """Connect the trigger's listener (setting up its subscription), then close it."""
    listener = listener_factory(store, options)(lease)
    try:
        await listener.connect()
    finally:
        await listener.close()


async def test_create_update_creates_the_subscription(tmp_path: Path) -> None:
    project = unique("p")
    async with emulator(project) as clients:
        topic = await new_topic(clients, project)
        name = unique("sub-")
        async with store_with_resources(
            tmp_path, {RESOURCE_PATH: ("gcloud", emulator_resource(project))}
        ) as store:
            await connect_once(store, gcp_lease(topic, name, ack_deadline=20))
        created = await subscription_of(clients, project, name)

    assert created.topic == f"projects/{project}/topics/{topic}"
    assert created.ack_deadline_seconds == 20
    assert not created.push_config.push_endpoint


async def test_create_update_turns_a_push_subscription_into_the_pull_one(tmp_path: Path) -> None:
    project = unique("p")
    async with emulator(project) as clients:
        topic = await new_topic(clients, project)
        name = unique("sub-")
        await clients.subscriber.create_subscription(
            request=types.Subscription(
                name=f"projects/{project}/subscriptions/{name}",
                topic=f"projects/{project}/topics/{topic}",
                push_config=types.PushConfig(push_endpoint="http://127.0.0.1:9/elsewhere"),
                ack_deadline_seconds=10,
            )
        )
        async with store_with_resources(
            tmp_path, {RESOURCE_PATH: ("gcloud", emulator_resource(project))}
        ) as store:
            await connect_once(store, gcp_lease(topic, name, ack_deadline=45))
        updated = await subscription_of(clients, project, name)

    assert updated.ack_deadline_seconds == 45
    assert not updated.push_config.push_endpoint


async def test_existing_only_checks_the_subscription(tmp_path: Path) -> None:
    project = unique("p")
    async with emulator(project) as clients:
        topic, other = await new_topic(clients, project), await new_topic(clients, project)
        present, elsewhere, pushing = unique("sub-"), unique("sub-"), unique("sub-")
        for name, on, endpoint in (
            (present, topic, ""),
            (elsewhere, other, ""),
            (pushing, topic, "http://127.0.0.1:9/elsewhere"),
        ):
            await clients.subscriber.create_subscription(
                request=types.Subscription(
                    name=f"projects/{project}/subscriptions/{name}",
                    topic=f"projects/{project}/topics/{on}",
                    push_config=types.PushConfig(push_endpoint=endpoint),
                    ack_deadline_seconds=10,
                )
            )
        async with store_with_resources(
            tmp_path, {RESOURCE_PATH: ("gcloud", emulator_resource(project))}
        ) as store:

            def existing(subscription: str, **row: Any) -> Lease:
                return gcp_lease(topic, subscription, subscription_mode="existing", **row)

            await connect_once(store, existing(present, ack_deadline=99))
            with pytest.raises(SubscriptionMismatch, match="does not exist"):
                await connect_once(store, existing(unique("missing-")))
            with pytest.raises(SubscriptionMismatch, match=rf"belongs to .*{other}"):
                await connect_once(store, existing(elsewhere))
            with pytest.raises(SubscriptionMismatch, match="needs a pull subscription"):
                await connect_once(store, existing(pushing))
            with pytest.raises(SubscriptionMismatch, match=r"Topic .* does not exist"):
                await connect_once(store, gcp_lease(unique("nope-"), unique("sub-")))
        untouched = await subscription_of(clients, project, present)

    assert untouched.ack_deadline_seconds == 10


async def test_a_push_trigger_gets_a_push_subscription_to_the_gateway(tmp_path: Path) -> None:
    project = unique("p")
    email = "pusher@gw-test.iam.gserviceaccount.com"
    resource = {**emulator_resource(project), "client_email": email}
    async with emulator(project) as clients:
        topic = await new_topic(clients, project)
        name = unique("sub-")
        async with store_with_resources(tmp_path, {RESOURCE_PATH: ("gcloud", resource)}) as store:
            lease = gcp_lease(
                topic,
                name,
                delivery_type="push",
                delivery_config={"authenticate": True, "audience": "gateway-push"},
            )
            options = GcpOptions(push_base_url="http://127.0.0.1:9/")
            watch = listener_factory(store, options)(lease)
            assert isinstance(watch, GcpPushWatch)
            await connect_once(store, lease, options)
            # Checked only, without the public URL: it pushes to this trigger, so it passes.
            await connect_once(store, lease, GcpOptions())
            # Another trigger on the same subscription: it does not push to that one.
            another = gcp_lease(
                topic,
                name,
                delivery_type="push",
                delivery_config={"authenticate": False},
                subscription_mode="existing",
            )
            with pytest.raises(SubscriptionMismatch, match="pushes to"):
                await connect_once(store, another)
        pushing = await subscription_of(clients, project, name)

    trigger = lease.trigger
    assert pushing.push_config.push_endpoint == (
        f"http://127.0.0.1:9/api/gcp/w/{trigger.workspace_id}/{trigger.path}"
    )
    assert pushing.push_config.oidc_token.service_account_email == email
    assert pushing.push_config.oidc_token.audience == "gateway-push"

"""The SQS listener against moto's server through aiobotocore: attributes, args, FIFO order,
acks and nacks, visibility while in flight, redelivery after a crash, web identity.

Endpoint: `GATEWAY_TEST_SQS` (default ``http://127.0.0.1:25000``). Each test uses queues and
triggers of its own.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any
from uuid import UUID

import httpx
import pytest
from aiobotocore.session import get_session

from gateway.clock import SystemClock
from gateway.jobs.read import JobFilter, list_jobs
from gateway.listeners.base import Batch
from gateway.listeners.lease import Lease, TriggerRef
from gateway.listeners.sql_lease_store import SqlLeaseStore
from gateway.listeners.sqs import (
    AioAwsClients,
    SqsError,
    SqsListener,
    listener_factory,
    queue_depth,
)
from gateway.listeners.sqs_config import SqsOptions, parse_resource, validate_trigger
from gateway.listeners.supervisor import LeaseSupervisor, LeaseTimings
from gateway.resources import resource_value
from gateway.store import Json, Store
from gateway.store.trigger_tables import COLUMN_DEFAULTS, TRIGGER_TABLES
from gateway.triggers.args import RunnableShape, build_args
from gateway.triggers.event import Event
from gateway.triggers.pipeline import TriggerJobSink

from ...conftest import service_missing
from ..support import OWNER, WS, add_scripts, eventually
from .brokers import WAIT_S, lease_of, next_batch, store_with_resources, unique

pytestmark = pytest.mark.integration

ENDPOINT = os.environ.get("GATEWAY_TEST_SQS", "http://127.0.0.1:25000")
RESOURCE_PATH = "u/alice/aws"
OIDC_RESOURCE_PATH = "u/alice/aws_role"
RESOURCE = {
    "awsAccessKeyId": "testing",
    "awsSecretAccessKey": "testing",
    "region": "us-east-1",
    "endpoint_url": ENDPOINT,
}
FAST = SqsOptions(wait_time_s=1, visibility_timeout_s=2, extend_every_s=0.5)
ECHO = "def main(msg: str):\n    return msg\n"


@asynccontextmanager
async def sqs() -> AsyncIterator[Any]:
    """A raw aiobotocore client of the test server; skips (fails under CI) when it is absent."""
    try:
        async with httpx.AsyncClient(timeout=3) as http:
            await http.get(f"{ENDPOINT}/moto-api/")
    except httpx.HTTPError as exc:
        service_missing(f"SQS at {ENDPOINT}", str(exc))
    async with get_session().create_client(
        "sqs",
        region_name="us-east-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ) as client:
        yield client


async def new_queue(client: Any, *, fifo: bool = False) -> str:
    """A new queue's URL."""
    name = unique("gw-") + (".fifo" if fifo else "")
    attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if fifo else {}
    response = await client.create_queue(QueueName=name, Attributes=attributes)
    url: str = response["QueueUrl"]
    return url


async def send(client: Any, queue_url: str, *bodies: str, **extra: Any) -> list[str]:
    """Send each body; the message ids, in order."""
    return [
        (await client.send_message(QueueUrl=queue_url, MessageBody=body, **extra))["MessageId"]
        for body in bodies
    ]


def sqs_listener(store: Store, options: SqsOptions, lease: Lease) -> SqsListener:
    """A listener of `lease` reading its resource from `store`, as the factory builds it."""
    return SqsListener(lease, partial(resource_value, store), options, AioAwsClients(options))


def sqs_lease(queue_url: str, **row: Any) -> Lease:
    """A lease on a new trigger of the queue, with the credentials resource."""
    return lease_of("sqs", queue_url=queue_url, aws_resource_path=RESOURCE_PATH, **row)


@asynccontextmanager
async def listening(listener: SqsListener) -> AsyncIterator[AsyncIterator[Batch]]:
    """The connected listener's batches; closed (without acking anything) at the end."""
    await listener.connect()
    stream = listener.consume()
    try:
        yield stream
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
        await listener.close()


async def drain(stream: AsyncIterator[Batch], listener: SqsListener, count: int) -> list[Event]:
    """Events of acked batches until `count` arrived."""
    events: list[Event] = []
    while len(events) < count:
        batch = await next_batch(stream)
        events.extend(batch.events)
        await listener.ack(batch)
    return events


def ids(events: Sequence[Event]) -> list[str]:
    """The message ids of the events."""
    return [event.info["message_id"] for event in events]


async def test_messages_become_events_with_attributes_and_args(tmp_path: Path) -> None:
    async with sqs() as client:
        queue = await new_queue(client)
        [sent] = await send(
            client,
            queue,
            '{"order": 7}',
            MessageAttributes={
                "color": {"DataType": "String", "StringValue": "blue"},
                "size": {"DataType": "Number", "StringValue": "3"},
                "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
                "ignored": {"DataType": "String", "StringValue": "not asked for"},
            },
        )
        async with store_with_resources(tmp_path, {RESOURCE_PATH: ("aws", RESOURCE)}) as store:
            lease = sqs_lease(queue, message_attributes=["color", "size", "blob"])
            listener = sqs_listener(store, FAST, lease)
            async with listening(listener) as stream:
                batch = await next_batch(stream)
                await listener.ack(batch)

    [event] = batch.events
    assert (event.kind, event.payload, event.raw) == ("sqs", '{"order": 7}', b'{"order": 7}')
    assert event.dedup_key == sent
    assert event.info["queue_url"] == queue
    assert event.info["message_id"] == sent
    assert event.info["receipt_handle"]
    assert event.info["attributes"]["ApproximateReceiveCount"] == "1"
    assert "SentTimestamp" in event.info["attributes"]
    assert event.info["message_attributes"] == {
        "color": {"data_type": "String", "string_value": "blue"},
        "size": {"data_type": "Number", "string_value": "3"},
        "blob": {"data_type": "Binary", "binary_value": "AAE="},
    }
    assert build_args(event, RunnableShape.from_schema(None)) == {"msg": '{"order": 7}'}
    preprocessed = build_args(event, RunnableShape(has_preprocessor=True))
    assert preprocessed["event"]["kind"] == "sqs"
    assert preprocessed["event"]["msg"] == '{"order": 7}'
    assert preprocessed["event"]["message_attributes"]["color"]["string_value"] == "blue"


async def test_all_message_attributes_and_none(tmp_path: Path) -> None:
    attributes = {"a": {"DataType": "String", "StringValue": "1"}}
    async with sqs() as client:
        every, plain = await new_queue(client), await new_queue(client)
        await send(client, every, "x", MessageAttributes=attributes)
        await send(client, plain, "y", MessageAttributes=attributes)
        async with store_with_resources(tmp_path, {RESOURCE_PATH: ("aws", RESOURCE)}) as store:
            all_listener = sqs_listener(store, FAST, sqs_lease(every, message_attributes=["All"]))
            async with listening(all_listener) as stream:
                [with_all] = await drain(stream, all_listener, 1)
            no_listener = sqs_listener(store, FAST, sqs_lease(plain))
            async with listening(no_listener) as stream:
                [without] = await drain(stream, no_listener, 1)

    assert with_all.info["message_attributes"] == {
        "a": {"data_type": "String", "string_value": "1"}
    }
    assert "message_attributes" not in without.info


async def test_fifo_queue_keeps_its_order_across_batches(tmp_path: Path) -> None:
    bodies = [f"m{n:02}" for n in range(25)]
    async with sqs() as client:
        queue = await new_queue(client, fifo=True)
        for start in range(0, len(bodies), 10):
            await client.send_message_batch(
                QueueUrl=queue,
                Entries=[
                    {"Id": str(n), "MessageBody": body, "MessageGroupId": "orders"}
                    for n, body in enumerate(bodies[start : start + 10])
                ],
            )
        async with store_with_resources(tmp_path, {RESOURCE_PATH: ("aws", RESOURCE)}) as store:
            listener = sqs_listener(store, FAST, sqs_lease(queue))
            async with listening(listener) as stream:
                events = await drain(stream, listener, len(bodies))

    assert [event.payload for event in events] == bodies


async def test_a_nacked_batch_is_visible_again_at_once(tmp_path: Path) -> None:
    async with sqs() as client:
        queue = await new_queue(client)
        sent = await send(client, queue, "a", "b")
        async with store_with_resources(tmp_path, {RESOURCE_PATH: ("aws", RESOURCE)}) as store:
            # A visibility far longer than the test: only the nack can bring them back.
            slow = SqsOptions(wait_time_s=1, visibility_timeout_s=300, extend_every_s=100)
            listener = sqs_listener(store, slow, sqs_lease(queue))
            async with listening(listener) as stream:
                first: list[Event] = []
                while len(first) < 2:
                    batch = await next_batch(stream)
                    first.extend(batch.events)
                    await listener.nack(batch)
                    await listener.nack(batch)  # idempotent
                again = await drain(stream, listener, 2)

    assert sorted(ids(first)) == sorted(ids(again)) == sorted(sent)
    assert {event.info["attributes"]["ApproximateReceiveCount"] for event in again} == {"2"}


async def test_an_acked_batch_is_deleted(tmp_path: Path) -> None:
    async with sqs() as client:
        queue = await new_queue(client)
        await send(client, queue, "a", "b", "c")
        async with store_with_resources(tmp_path, {RESOURCE_PATH: ("aws", RESOURCE)}) as store:
            listener = sqs_listener(store, FAST, sqs_lease(queue))
            async with listening(listener) as stream:
                await drain(stream, listener, 3)
                depth = await listener.queue_depth()

    assert (depth.visible, depth.in_flight, depth.delayed) == (0, 0, 0)


async def test_visibility_is_extended_while_a_batch_is_in_flight(tmp_path: Path) -> None:
    async with sqs() as client:
        queue = await new_queue(client)
        await send(client, queue, "slow job")
        async with store_with_resources(tmp_path, {RESOURCE_PATH: ("aws", RESOURCE)}) as store:
            listener = sqs_listener(store, FAST, sqs_lease(queue))
            async with listening(listener) as stream:
                batch = await next_batch(stream)
                # Twice the visibility timeout: without the extension it would be visible.
                await asyncio.sleep(2 * FAST.visibility_timeout_s)
                seen = await client.receive_message(QueueUrl=queue, WaitTimeSeconds=1)
                depth = await listener.queue_depth()
                await listener.ack(batch)
                after = await listener.queue_depth()

    assert "Messages" not in seen
    assert (depth.visible, depth.in_flight) == (0, 1)
    assert after.total == 0


async def test_a_closed_listener_leaves_its_unacked_batch_to_reappear(tmp_path: Path) -> None:
    async with sqs() as client:
        queue = await new_queue(client)
        sent = await send(client, queue, "a")
        async with store_with_resources(tmp_path, {RESOURCE_PATH: ("aws", RESOURCE)}) as store:
            lease = sqs_lease(queue)
            first = sqs_listener(store, FAST, lease)
            async with listening(first) as stream:
                await next_batch(stream)
            second = sqs_listener(store, FAST, lease)
            async with listening(second) as stream:
                [again] = await drain(stream, second, 1)

    assert again.dedup_key == sent[0]
    assert again.info["attributes"]["ApproximateReceiveCount"] == "2"


async def add_sqs_trigger(store: Store, queue_url: str) -> TriggerRef:
    """An `sqs_trigger` row on script `f/t/echo`, as the API writes it."""
    trigger = TriggerRef("sqs", WS, f"u/alice/{unique('sqs_')}")
    values = {
        **{c: COLUMN_DEFAULTS.get(c) for c in TRIGGER_TABLES["sqs"].writable_columns},
        "path": trigger.path,
        "script_path": "f/t/echo",
        "is_flow": False,
        "workspace_id": WS,
        "edited_by": OWNER.username,
        "email": OWNER.email,
        "permissioned_as": OWNER.permissioned_as,
        "queue_url": queue_url,
        "aws_resource_path": RESOURCE_PATH,
    }
    values.pop("edited_at")
    async with store.transaction() as tx:
        await tx.execute("upsert_sqs_trigger", **values)
        await tx.execute(
            "upsert_resource",
            workspace_id=WS,
            path=RESOURCE_PATH,
            value=Json(RESOURCE),
            description="",
            resource_type="aws",
            created_by=OWNER.username,
        )
    return trigger


async def trigger_jobs(store: Store, trigger: TriggerRef) -> list[dict[str, Any]]:
    """The trigger's jobs."""
    return await list_jobs(store, WS, JobFilter(trigger=trigger.path, per_page=100))


async def test_a_crash_between_commit_and_delete_maps_the_redelivery_to_the_same_job(
    store: Store,
) -> None:
    await add_scripts(store, echo=ECHO)
    async with sqs() as client:
        queue = await new_queue(client)
        sent = await send(client, queue, "a", "b")
        trigger = await add_sqs_trigger(store, queue)
        [lease] = await SqlLeaseStore(store).claim_stale("sqs", "gw-a", 15.0)
        sink = TriggerJobSink(store)

        crashed = sqs_listener(store, FAST, lease)
        committed: dict[str, UUID] = {}
        async with listening(crashed) as stream:
            while len(committed) < 2:
                batch = await next_batch(stream)
                job_ids = await sink.submit(lease, batch.events)
                committed.update(zip(ids(batch.events), job_ids, strict=True))
            # The jobs are committed; the process dies before the delete.

        restarted = sqs_listener(store, FAST, lease)
        redelivered: dict[str, UUID] = {}
        async with listening(restarted) as stream:
            while len(redelivered) < 2:
                batch = await next_batch(stream)
                job_ids = await sink.submit(lease, batch.events)
                redelivered.update(zip(ids(batch.events), job_ids, strict=True))
                await restarted.ack(batch)
            depth = await restarted.queue_depth()

    assert sorted(committed) == sorted(sent)
    assert redelivered == committed
    jobs = await trigger_jobs(store, trigger)
    assert sorted(job["args"]["msg"] for job in jobs) == ["a", "b"]
    assert depth.total == 0


class FailingOnce:
    """A job sink whose first submit fails, as a database outage would."""

    def __init__(self, inner: TriggerJobSink) -> None:
        self.inner = inner
        self.failed = False

    async def submit(self, lease: Lease, events: Sequence[Event]) -> list[UUID]:
        if not self.failed:
            self.failed = True
            raise ConnectionError("database unreachable")
        return await self.inner.submit(lease, events)


class NoAlerts:
    """Alerts nobody reads."""

    async def raise_alert(self, trigger: TriggerRef, message: str) -> None:
        return None

    async def clear_alert(self, trigger: TriggerRef) -> None:
        return None


async def test_a_message_whose_job_cannot_be_committed_becomes_visible_again(
    store: Store,
) -> None:
    await add_scripts(store, echo=ECHO)
    async with sqs() as client:
        queue = await new_queue(client)
        await send(client, queue, "retry me")
        trigger = await add_sqs_trigger(store, queue)
        sink = FailingOnce(TriggerJobSink(store))
        supervisor = LeaseSupervisor(
            "gw-a",
            store=SqlLeaseStore(store),
            factories={"sqs": listener_factory(store, FAST)},
            sink=sink,
            alerts=NoAlerts(),
            timings=LeaseTimings(
                claim_interval_s=1,
                ping_interval_s=1,
                stale_after_s=5,
                backoff_base_s=0.1,
                backoff_cap_s=0.2,
            ),
            clock=SystemClock(),
        )
        await supervisor.start()
        try:
            [job] = await eventually(lambda: trigger_jobs(store, trigger), timeout_s=WAIT_S)
            await eventually(lambda: queue_is_empty(queue), timeout_s=WAIT_S)
        finally:
            await supervisor.stop(drain_timeout_s=5)

    assert sink.failed
    assert (job["args"], job["trigger_kind"]) == ({"msg": "retry me"}, "sqs")


async def queue_is_empty(queue: str) -> bool:
    """Whether the queue holds no message at all (in flight or not)."""
    config = validate_trigger({"queue_url": queue, "aws_resource_path": RESOURCE_PATH})
    depth = await queue_depth(config, parse_resource(RESOURCE, "credentials"), options=FAST)
    return depth.total == 0


async def test_an_oidc_trigger_assumes_its_role_with_the_web_identity_token(
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl\n")
    options = SqsOptions(
        wait_time_s=1,
        visibility_timeout_s=2,
        extend_every_s=0.5,
        sts_endpoint_url=ENDPOINT,
        web_identity_token_file=str(token_file),
    )
    role = {
        "roleArn": "arn:aws:iam::123456789012:role/gateway",
        "region": "us-east-1",
        "endpoint_url": ENDPOINT,
    }
    async with sqs() as client:
        queue = await new_queue(client)
        sent = await send(client, queue, "with a role")
        async with store_with_resources(
            tmp_path, {OIDC_RESOURCE_PATH: ("aws_oidc", role)}
        ) as store:
            lease = lease_of(
                "sqs",
                queue_url=queue,
                aws_resource_path=OIDC_RESOURCE_PATH,
                aws_auth_resource_type="oidc",
            )
            listener = sqs_listener(store, options, lease)
            async with listening(listener) as stream:
                [event] = await drain(stream, listener, 1)

    assert event.dedup_key == sent[0]


async def test_queue_depth_counts_the_waiting_messages() -> None:
    async with sqs() as client:
        queue = await new_queue(client)
        await send(client, queue, "a", "b", "c")
        config = validate_trigger(
            MappingProxyType({"queue_url": queue, "aws_resource_path": RESOURCE_PATH})
        )
        depth = await queue_depth(config, parse_resource(RESOURCE, "credentials"), options=FAST)

    assert (depth.visible, depth.in_flight, depth.delayed, depth.total) == (3, 0, 0, 3)


async def test_a_missing_queue_fails_the_connect(tmp_path: Path) -> None:
    async with sqs() as client:
        queue = await new_queue(client)
        await client.delete_queue(QueueUrl=queue)
    async with store_with_resources(tmp_path, {RESOURCE_PATH: ("aws", RESOURCE)}) as store:
        listener = sqs_listener(store, FAST, sqs_lease(f"{queue}-{uuid.uuid4().hex[:4]}"))
        try:
            with pytest.raises(SqsError, match="GetQueueAttributes"):
                await listener.connect()
        finally:
            await listener.close()

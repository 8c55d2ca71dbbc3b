"""SqsListener's acking over a scripted client: deletes, nacks, visibility while in flight,
errors, and web identity credentials renewed between batches.

`ScriptedSqs` stands in for aiobotocore's SQS client: the test hands it the receives to return
and reads the calls it got.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway.errors import ConfigError, InvalidInput
from gateway.listeners.base import Batch
from gateway.listeners.lease import Lease, TriggerRef
from gateway.listeners.sqs import SqsConnection, SqsError, SqsListener
from gateway.listeners.sqs_config import SqsOptions

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"
KEYS = {"awsAccessKeyId": "AKIA", "awsSecretAccessKey": "secret"}
ROLE = {"roleArn": "arn:aws:iam::123456789012:role/gateway"}
QUICK = SqsOptions(wait_time_s=0, visibility_timeout_s=1, extend_every_s=0.01)


def message(n: int) -> dict[str, Any]:
    """A received message."""
    return {"MessageId": f"m-{n}", "ReceiptHandle": f"r-{n}", "Body": f"body {n}"}


class ScriptedSqs:
    """The part of aiobotocore's SQS client the listener uses, driven by the test."""

    def __init__(self) -> None:
        self.receives: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failed_entries: list[dict[str, str]] = []
        self.error: Exception | None = None

    async def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("receive", kwargs))
        messages = await self.receives.get()
        return {"Messages": messages} if messages else {}

    async def delete_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        return self._batch("delete", kwargs)

    async def change_message_visibility_batch(self, **kwargs: Any) -> dict[str, Any]:
        return self._batch("visibility", kwargs)

    async def get_queue_attributes(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("attributes", kwargs))
        return {"Attributes": {"ApproximateNumberOfMessages": "4"}}

    def _batch(self, name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((name, kwargs))
        if self.error is not None:
            raise self.error
        return {"Successful": [], "Failed": self.failed_entries}

    def made(self, name: str) -> list[dict[str, Any]]:
        """The arguments of every call of `name`."""
        return [kwargs for called, kwargs in self.calls if called == name]


class ScriptedClients:
    """`AwsClients` handing out the scripted client and answering STS from a list."""

    def __init__(self, sqs: ScriptedSqs) -> None:
        self.sqs_client = sqs
        self.connections: list[SqsConnection] = []
        self.sts_requests: list[tuple[Mapping[str, Any], str, str | None]] = []
        self.expirations: list[datetime] = []

    def sqs(self, connection: SqsConnection) -> AbstractAsyncContextManager[Any]:
        self.connections.append(connection)
        return self._open()

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[ScriptedSqs]:
        yield self.sqs_client

    async def assume_role_with_web_identity(
        self, request: Mapping[str, Any], *, region: str, endpoint_url: str | None
    ) -> Mapping[str, Any]:
        self.sts_requests.append((request, region, endpoint_url))
        n = len(self.sts_requests)
        return {
            "Credentials": {
                "AccessKeyId": f"ASIA{n}",
                "SecretAccessKey": "temporary",
                "SessionToken": f"session-{n}",
                "Expiration": self.expirations[n - 1],
            }
        }


def lease(**row: Any) -> Lease:
    """A lease on an SQS trigger of `QUEUE`."""
    trigger = TriggerRef("sqs", "acme", "u/ops/orders")
    columns = {"queue_url": QUEUE, "aws_resource_path": "u/ops/aws", **row}
    return Lease(trigger, "gw-a", MappingProxyType(columns))


@pytest.fixture
def sqs() -> ScriptedSqs:
    """The scripted client."""
    return ScriptedSqs()


@asynccontextmanager
async def consuming(
    listener: SqsListener,
) -> AsyncIterator[AsyncIterator[Batch]]:
    """The connected listener's stream, closed at the end."""
    await listener.connect()
    stream = listener.consume()
    try:
        yield stream
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
        await listener.close()


def listener_of(
    clients: ScriptedClients,
    resource: Mapping[str, Any] = KEYS,
    options: SqsOptions = QUICK,
    **row: Any,
) -> SqsListener:
    """A listener whose resource is `resource`."""

    async def resources(workspace_id: str, path: str) -> Any:
        return dict(resource)

    return SqsListener(lease(**row), resources, options, clients)


async def test_connect_checks_the_queue_and_receives_with_long_polling(sqs: ScriptedSqs) -> None:
    clients = ScriptedClients(sqs)
    listener = listener_of(clients, message_attributes=["color"])
    sqs.receives.put_nowait([message(1)])

    async with consuming(listener) as stream:
        batch = await anext(stream)

    [connection] = clients.connections
    assert (connection.region, connection.endpoint_url) == ("eu-west-1", None)
    assert connection.credentials.access_key_id == "AKIA"
    assert sqs.made("attributes")[0]["QueueUrl"] == QUEUE
    assert sqs.made("receive")[0] == {
        "QueueUrl": QUEUE,
        "MaxNumberOfMessages": 10,
        "WaitTimeSeconds": 0,
        "VisibilityTimeout": 1,
        "MessageSystemAttributeNames": ["All"],
        "MessageAttributeNames": ["color"],
    }
    assert [event.dedup_key for event in batch.events] == ["m-1"]


async def test_empty_receives_yield_nothing(sqs: ScriptedSqs) -> None:
    listener = listener_of(ScriptedClients(sqs))
    for messages in ([], [], [message(1)]):
        sqs.receives.put_nowait(messages)

    async with consuming(listener) as stream:
        batch = await anext(stream)

    assert len(sqs.made("receive")) == 3
    assert [event.payload for event in batch.events] == ["body 1"]


async def test_ack_deletes_the_batch_once(sqs: ScriptedSqs) -> None:
    listener = listener_of(ScriptedClients(sqs))
    sqs.receives.put_nowait([message(1), message(2)])

    async with consuming(listener) as stream:
        batch = await anext(stream)
        assert sqs.made("delete") == []
        await listener.ack(batch)
        await listener.ack(batch)
        await listener.nack(batch)

    assert sqs.made("delete") == [
        {
            "QueueUrl": QUEUE,
            "Entries": [{"Id": "0", "ReceiptHandle": "r-1"}, {"Id": "1", "ReceiptHandle": "r-2"}],
        }
    ]
    assert all(call["VisibilityTimeout"] != 0 for call in sqs.made("visibility"))


async def test_nack_makes_the_batch_visible_at_once(sqs: ScriptedSqs) -> None:
    listener = listener_of(ScriptedClients(sqs), options=SqsOptions(wait_time_s=0))
    sqs.receives.put_nowait([message(1)])

    async with consuming(listener) as stream:
        batch = await anext(stream)
        await listener.nack(batch)
        await listener.ack(batch)

    assert sqs.made("visibility") == [
        {
            "QueueUrl": QUEUE,
            "Entries": [{"Id": "0", "ReceiptHandle": "r-1", "VisibilityTimeout": 0}],
        }
    ]
    assert sqs.made("delete") == []


async def test_visibility_is_extended_while_the_batch_is_in_flight(sqs: ScriptedSqs) -> None:
    listener = listener_of(ScriptedClients(sqs))
    sqs.receives.put_nowait([message(1)])

    async with consuming(listener) as stream:
        batch = await anext(stream)
        await asyncio.sleep(QUICK.extend_every_s * 5)
        extended = len(sqs.made("visibility"))
        await listener.ack(batch)
        await asyncio.sleep(QUICK.extend_every_s * 3)

    assert extended >= 2
    assert len(sqs.made("visibility")) == extended
    assert {call["Entries"][0]["VisibilityTimeout"] for call in sqs.made("visibility")} == {1}


async def test_close_stops_extending_an_unacked_batch(sqs: ScriptedSqs) -> None:
    listener = listener_of(ScriptedClients(sqs))
    sqs.receives.put_nowait([message(1)])

    async with consuming(listener) as stream:
        await anext(stream)
    extended = len(sqs.made("visibility"))
    await asyncio.sleep(QUICK.extend_every_s * 3)

    assert len(sqs.made("visibility")) == extended
    assert sqs.made("delete") == []


async def test_refused_deletes_are_logged_and_left_to_dedup(
    sqs: ScriptedSqs, caplog: pytest.LogCaptureFixture
) -> None:
    listener = listener_of(ScriptedClients(sqs))
    sqs.receives.put_nowait([message(1), message(2)])
    sqs.failed_entries = [{"Id": "1", "Code": "ReceiptHandleIsInvalid", "Message": "expired"}]

    with caplog.at_level(logging.WARNING):
        async with consuming(listener) as stream:
            await listener.ack(await anext(stream))

    [record] = [r for r in caplog.records if getattr(r, "action", None) == "delete_failed"]
    assert "m-2: ReceiptHandleIsInvalid: expired" in record.getMessage()


async def test_client_errors_become_sqs_errors_naming_queue_and_call(sqs: ScriptedSqs) -> None:
    listener = listener_of(ScriptedClients(sqs))
    sqs.receives.put_nowait([message(1)])
    sqs.error = ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "DeleteMessageBatch"
    )

    async with consuming(listener) as stream:
        batch = await anext(stream)
        with pytest.raises(SqsError) as raised:
            await listener.ack(batch)

    assert str(raised.value) == (
        f"SQS DeleteMessageBatch on {QUEUE} failed: AccessDenied: not allowed"
    )


async def test_an_oidc_trigger_renews_its_credentials_between_batches(
    sqs: ScriptedSqs, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("eyJ.web.identity\n")
    clients = ScriptedClients(sqs)
    now = datetime.now(UTC)
    # The first credentials are already within the renewal margin, the second are not.
    clients.expirations = [now + timedelta(seconds=60), now + timedelta(hours=1)]
    options = SqsOptions(
        wait_time_s=0,
        sts_endpoint_url="http://sts.local",
        web_identity_token_file=str(token),
        role_session_name="gw-test",
    )
    listener = listener_of(clients, ROLE, options, aws_auth_resource_type="oidc")
    sqs.receives.put_nowait([message(1)])
    sqs.receives.put_nowait([message(2)])

    async with consuming(listener) as stream:
        await listener.ack(await anext(stream))
        await listener.ack(await anext(stream))

    request, region, endpoint = clients.sts_requests[0]
    assert request == {
        "RoleArn": ROLE["roleArn"],
        "RoleSessionName": "gw-test",
        "WebIdentityToken": "eyJ.web.identity",
        "DurationSeconds": 3600,
    }
    assert (region, endpoint) == ("eu-west-1", "http://sts.local")
    assert len(clients.sts_requests) == 2
    assert [c.credentials.session_token for c in clients.connections] == ["session-1", "session-2"]


async def test_an_oidc_trigger_needs_a_token_file_and_a_role(sqs: ScriptedSqs) -> None:
    no_token = listener_of(ScriptedClients(sqs), ROLE, QUICK, aws_auth_resource_type="oidc")
    no_role = listener_of(
        ScriptedClients(sqs),
        {},
        SqsOptions(web_identity_token_file="/nonexistent"),
        aws_auth_resource_type="oidc",
    )

    with pytest.raises(ConfigError, match="AWS_WEB_IDENTITY_TOKEN_FILE"):
        await no_token.connect()
    with pytest.raises(InvalidInput, match="roleArn"):
        await no_role.connect()

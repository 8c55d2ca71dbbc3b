"""The SQS listener: long polling of one queue per leased `sqs_trigger`.

Delivery is at-least-once. Messages are received ten at a time with a 20 s long poll and a
visibility timeout, which is extended while their batch is in flight (submitted as jobs, not yet
acked). `ack` deletes the batch once the supervisor has committed its jobs; `nack` makes it
visible again at once. A crash, or a listener closed before the ack, leaves the messages to
reappear when their visibility runs out, and the dedup key (the `MessageId`) maps each one to the
job it already became.

One batch is in flight at a time: the next receive waits until the batch before was acked or
nacked, so a FIFO queue's messages become jobs in their order.

An `oidc` trigger assumes its role with this instance's web identity token (STS
`AssumeRoleWithWebIdentity`); the temporary credentials are renewed between batches before they
expire. Client errors are mapped to `SqsError` here, once.

`queue_depth` (on a connected listener, or standalone for a trigger's status and the `test`
endpoint) reads the queue's approximate message counts.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Final, Protocol, TypeVar

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore import UNSIGNED
from botocore.exceptions import BotoCoreError, ClientError

from gateway.errors import ConfigError, GatewayError, InvalidInput
from gateway.listeners.base import Batch, ListenerFactory
from gateway.listeners.lease import Lease
from gateway.listeners.sqs_config import (
    MAX_RECEIVE,
    AwsCredentials,
    AwsCredentialsResource,
    AwsResource,
    SqsOptions,
    SqsTriggerConfig,
    credentials_from_sts,
    parse_resource,
    validate_trigger,
    web_identity_request,
)
from gateway.resources import resource_value
from gateway.store import Store
from gateway.triggers.event import Event

logger = logging.getLogger(__name__)

T = TypeVar("T")
ResourceLoader = Callable[[str, str], Awaitable[Any]]
"""Reads a resource's value by workspace and path (`resource_value` on a store)."""
_DEPTH_ATTRIBUTES: Final = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
_BATCH_METHODS: Final = {
    "DeleteMessageBatch": "delete_message_batch",
    "ChangeMessageVisibilityBatch": "change_message_visibility_batch",
}


class SqsError(GatewayError):
    """SQS or STS refused a call or cannot be reached; the message names the queue and call."""


@dataclass(frozen=True, slots=True)
class SqsConnection:
    """Where, and as whom, an SQS client connects."""

    region: str
    endpoint_url: str | None
    credentials: AwsCredentials


class AwsClients(Protocol):
    """The seam to AWS: SQS clients, and STS for web identity."""

    def sqs(self, connection: SqsConnection) -> AbstractAsyncContextManager[Any]:
        """An SQS client for `connection`, open inside the context."""
        ...

    async def assume_role_with_web_identity(
        self, request: Mapping[str, Any], *, region: str, endpoint_url: str | None
    ) -> Mapping[str, Any]:
        """The STS response to `AssumeRoleWithWebIdentity` with `request`'s arguments."""
        ...


class AioAwsClients:
    """`AwsClients` on aiobotocore, one session (and its loaded service models) for all."""

    def __init__(self, options: SqsOptions, session: AioSession | None = None) -> None:
        self._session = session if session is not None else get_session()
        # The read timeout outlasts a long poll.
        self._config = AioConfig(
            connect_timeout=options.connect_timeout_s,
            read_timeout=options.wait_time_s + options.connect_timeout_s,
            retries={"mode": "standard", "max_attempts": 3},
        )

    def sqs(self, connection: SqsConnection) -> AbstractAsyncContextManager[Any]:
        """An aiobotocore SQS client."""
        credentials = connection.credentials
        client: AbstractAsyncContextManager[Any] = self._session.create_client(
            "sqs",
            region_name=connection.region,
            endpoint_url=connection.endpoint_url,
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            aws_session_token=credentials.session_token,
            config=self._config,
        )
        return client

    async def assume_role_with_web_identity(
        self, request: Mapping[str, Any], *, region: str, endpoint_url: str | None
    ) -> Mapping[str, Any]:
        """Call STS unsigned: the web identity token is the only proof asked for."""
        unsigned = self._config.merge(AioConfig(signature_version=UNSIGNED))
        try:
            async with self._session.create_client(
                "sts", region_name=region, endpoint_url=endpoint_url, config=unsigned
            ) as sts:
                response: Mapping[str, Any] = await sts.assume_role_with_web_identity(**request)
        except (ClientError, BotoCoreError) as exc:
            raise SqsError(
                f"cannot assume role {request.get('RoleArn')} with the web identity token: "
                f"{_describe(exc)}"
            ) from exc
        return response


@dataclass(frozen=True, slots=True)
class SqsAckToken:
    """Which delivery of which messages a batch holds."""

    number: int
    receipts: tuple[tuple[str, str], ...]  # (message id, receipt handle) in received order


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """The queue's approximate message counts, as SQS reports them."""

    visible: int
    in_flight: int
    delayed: int

    @property
    def total(self) -> int:
        """Every message the queue holds."""
        return self.visible + self.in_flight + self.delayed


class SqsListener:
    """Long polls one queue for one leased trigger; see the module docstring for acking."""

    kind: ClassVar[str] = "sqs"
    delivery_guarantee: ClassVar[str] = "at-least-once"

    def __init__(
        self, lease: Lease, resources: ResourceLoader, options: SqsOptions, clients: AwsClients
    ) -> None:
        self._lease = lease
        self._resources = resources
        self._options = options
        self._clients = clients
        self._config: SqsTriggerConfig | None = None
        self._resource: AwsResource | None = None
        self._credentials: AwsCredentials | None = None
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._numbers = itertools.count()
        self._in_flight: dict[int, asyncio.Task[None]] = {}  # batch number -> visibility extender

    @property
    def config(self) -> SqsTriggerConfig:
        """The trigger's configuration, read by `connect`."""
        if self._config is None:
            raise RuntimeError(f"sqs trigger {self._lease.trigger} is not connected")
        return self._config

    async def connect(self) -> None:
        """Read the trigger and its resource, open a client and check that the queue answers."""
        config = validate_trigger(self._lease.row)
        self._config = config
        self._resource = parse_resource(
            await self._resources(self._lease.trigger.workspace_id, config.aws_resource_path),
            config.aws_auth_resource_type,
        )
        await self._open()
        await self.queue_depth()

    async def consume(self) -> AsyncIterator[Batch]:
        """Yield each non-empty receive as a batch; the next receive waits for its ack or nack."""
        config = self.config
        receive = _receive_arguments(config, self._options)
        while True:
            await self._renew_if_due()
            response = await self._call("ReceiveMessage", self._client.receive_message(**receive))
            messages: list[Mapping[str, Any]] = response.get("Messages") or []
            if not messages:
                continue
            events = [to_event(message, config.queue_url) for message in messages]
            token = SqsAckToken(
                number=next(self._numbers),
                receipts=tuple((m["MessageId"], m["ReceiptHandle"]) for m in messages),
            )
            self._in_flight[token.number] = asyncio.create_task(
                self._keep_invisible(token.receipts),
                name=f"sqs-visibility:{self._lease.trigger}:{token.number}",
            )
            yield Batch(events=events, ack_token=token)

    async def ack(self, batch: Batch) -> None:
        """Delete the batch's messages (once); entries SQS refuses come again and are deduped."""
        token: SqsAckToken = batch.ack_token
        if not await self._land(token):
            return
        failed = await self._batch_call("DeleteMessageBatch", token.receipts, {})
        if failed:
            logger.warning(
                "sqs trigger %s: %d messages not deleted, SQS delivers them again and their "
                "jobs are reused: %s",
                self._lease.trigger,
                len(failed),
                "; ".join(failed),
                extra=self._extra("delete_failed"),
            )

    async def nack(self, batch: Batch) -> None:
        """Make the batch's messages visible again at once (once)."""
        token: SqsAckToken = batch.ack_token
        if not await self._land(token):
            return
        failed = await self._batch_call(
            "ChangeMessageVisibilityBatch", token.receipts, {"VisibilityTimeout": 0}
        )
        if failed:
            logger.warning(
                "sqs trigger %s: %d messages stay invisible until their timeout: %s",
                self._lease.trigger,
                len(failed),
                "; ".join(failed),
                extra=self._extra("nack_failed"),
            )

    async def close(self) -> None:
        """Stop extending visibility and close the client; unacked messages reappear later."""
        extenders = list(self._in_flight.values())
        self._in_flight.clear()
        for extender in extenders:
            extender.cancel()
        if extenders:
            await asyncio.wait(extenders)
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def queue_depth(self) -> QueueDepth:
        """The queue's approximate message counts; `SqsError` when the queue cannot be read."""
        return await _read_depth(self._client, self.config.queue_url)

    async def _open(self) -> None:
        config, resource = self.config, self._resource
        assert resource is not None, "connect reads the resource first"
        region = config.region(resource)
        self._credentials = await resolve_credentials(
            resource, region, self._options, self._clients
        )
        connection = SqsConnection(
            region, resource.endpoint_url or self._options.endpoint_url, self._credentials
        )
        stack = AsyncExitStack()
        try:
            self._client = await stack.enter_async_context(self._clients.sqs(connection))
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack

    async def _renew_if_due(self) -> None:
        """Reopen the client with new credentials before the temporary ones expire.

        Called between batches, when none is in flight, so no call is using the old client.
        """
        credentials = self._credentials
        if credentials is None or not credentials.expire_within(
            self._options.refresh_before_expiry_s, datetime.now(UTC)
        ):
            return
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()
        await self._open()
        logger.info(
            "sqs trigger %s: temporary credentials renewed",
            self._lease.trigger,
            extra=self._extra("credentials_renewed"),
        )

    async def _land(self, token: SqsAckToken) -> bool:
        """Stop extending the batch's visibility; False when it was acked or nacked before."""
        extender = self._in_flight.pop(token.number, None)
        if extender is None:
            return False
        extender.cancel()
        await asyncio.wait([extender])
        return True

    async def _keep_invisible(self, receipts: Sequence[tuple[str, str]]) -> None:
        timeout = {"VisibilityTimeout": self._options.visibility_timeout_s}
        while True:
            await asyncio.sleep(self._options.extend_every_s)
            try:
                failed = await self._batch_call("ChangeMessageVisibilityBatch", receipts, timeout)
            except SqsError as exc:
                failed = [str(exc)]
            if failed:
                logger.warning(
                    "sqs trigger %s: visibility not extended, a batch in flight may be "
                    "delivered again (its jobs are reused): %s",
                    self._lease.trigger,
                    "; ".join(failed),
                    extra=self._extra("extend_failed"),
                )

    async def _batch_call(
        self, action: str, receipts: Sequence[tuple[str, str]], extra: Mapping[str, Any]
    ) -> list[str]:
        """Call a batch action on the receipts, ten entries a call; the entries that failed."""
        method = getattr(self._client, _BATCH_METHODS[action])
        failed: list[str] = []
        for start in range(0, len(receipts), MAX_RECEIVE):
            chunk = receipts[start : start + MAX_RECEIVE]
            entries = [
                {"Id": str(index), "ReceiptHandle": handle, **extra}
                for index, (_, handle) in enumerate(chunk)
            ]
            response = await self._call(
                action, method(QueueUrl=self.config.queue_url, Entries=entries)
            )
            for entry in response.get("Failed") or []:
                message_id = chunk[int(entry["Id"])][0]
                failed.append(f"{message_id}: {entry.get('Code')}: {entry.get('Message', '')}")
        return failed

    async def _call(self, action: str, call: Awaitable[T]) -> T:
        return await _sqs_call(self.config.queue_url, action, call)

    def _extra(self, action: str) -> dict[str, str]:
        return {"action": action, "trigger": str(self._lease.trigger), "kind": self.kind}


async def resolve_credentials(
    resource: AwsResource, region: str, options: SqsOptions, clients: AwsClients
) -> AwsCredentials:
    """The resource's access key, or temporary credentials for its role (web identity)."""
    if isinstance(resource, AwsCredentialsResource):
        return AwsCredentials(resource.access_key_id, resource.secret_access_key)
    role_arn = resource.role_arn or options.role_arn
    if not role_arn:
        raise InvalidInput("resource.roleArn", "required (or AWS_ROLE_ARN on the gateway)")
    token_file = options.web_identity_token_file
    if not token_file:
        raise ConfigError(
            "oidc SQS triggers need AWS_WEB_IDENTITY_TOKEN_FILE: the file holding this "
            "instance's web identity token"
        )
    try:
        token = await asyncio.to_thread(Path(token_file).read_text)
    except OSError as exc:
        raise ConfigError(f"cannot read the web identity token file {token_file}: {exc}") from None
    request = web_identity_request(
        role_arn, token, options.role_session_name, options.assumed_role_duration_s
    )
    response = await clients.assume_role_with_web_identity(
        request, region=region, endpoint_url=options.sts_endpoint_url
    )
    return credentials_from_sts(response)


async def queue_depth(
    config: SqsTriggerConfig,
    resource: AwsResource,
    *,
    options: SqsOptions | None = None,
    clients: AwsClients | None = None,
) -> QueueDepth:
    """Connect as a trigger would and read its queue's depth: the `test` endpoint's check."""
    chosen = options if options is not None else SqsOptions.from_environ(os.environ)
    aws = clients if clients is not None else AioAwsClients(chosen)
    region = config.region(resource)
    credentials = await resolve_credentials(resource, region, chosen, aws)
    connection = SqsConnection(region, resource.endpoint_url or chosen.endpoint_url, credentials)
    async with aws.sqs(connection) as client:
        return await _read_depth(client, config.queue_url)


def listener_factory(
    store: Store, options: SqsOptions | None = None, clients: AwsClients | None = None
) -> ListenerFactory:
    """Builds SQS listeners that read their resource from `store` when they connect.

    Without `options`, the defaults with the standard AWS variables of this process.
    """
    chosen = options if options is not None else SqsOptions.from_environ(os.environ)
    aws = clients if clients is not None else AioAwsClients(chosen)

    def build(lease: Lease) -> SqsListener:
        return SqsListener(lease, partial(resource_value, store), chosen, aws)

    return build


def to_event(message: Mapping[str, Any], queue_url: str) -> Event:
    """The event of one received SQS message; the payload is its body.

    Info: `queue_url`, `message_id`, `receipt_handle`, `attributes` (the system attributes, all
    strings) and, when the message has some of those asked for, `message_attributes`
    (`{name: {"data_type", "string_value"?, "binary_value"?}}`, binary values in base64).
    """
    body: str = message.get("Body") or ""
    info: dict[str, Any] = {
        "queue_url": queue_url,
        "message_id": message["MessageId"],
        "receipt_handle": message.get("ReceiptHandle"),
        "attributes": dict(message.get("Attributes") or {}),
    }
    attributes: Mapping[str, Mapping[str, Any]] = message.get("MessageAttributes") or {}
    if attributes:
        info["message_attributes"] = {
            name: _attribute_value(value) for name, value in attributes.items()
        }
    return Event(
        kind="sqs",
        payload=body,
        info=info,
        dedup_key=message["MessageId"],
        raw=body.encode("utf-8"),
    )


def _attribute_value(value: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"data_type": value.get("DataType")}
    if value.get("StringValue") is not None:
        converted["string_value"] = value["StringValue"]
    if value.get("BinaryValue") is not None:
        converted["binary_value"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return converted


def _receive_arguments(config: SqsTriggerConfig, options: SqsOptions) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "QueueUrl": config.queue_url,
        "MaxNumberOfMessages": options.max_messages,
        "WaitTimeSeconds": options.wait_time_s,
        "VisibilityTimeout": options.visibility_timeout_s,
        "MessageSystemAttributeNames": ["All"],
    }
    if config.message_attributes:
        arguments["MessageAttributeNames"] = list(config.message_attributes)
    return arguments


async def _read_depth(client: Any, queue_url: str) -> QueueDepth:
    if client is None:
        raise RuntimeError(f"no SQS client is open for {queue_url}")
    response = await _sqs_call(
        queue_url,
        "GetQueueAttributes",
        client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(_DEPTH_ATTRIBUTES)),
    )
    counts = response.get("Attributes") or {}
    visible, in_flight, delayed = (int(counts.get(name, 0)) for name in _DEPTH_ATTRIBUTES)
    return QueueDepth(visible=visible, in_flight=in_flight, delayed=delayed)


async def _sqs_call(queue_url: str, action: str, call: Awaitable[T]) -> T:
    """Await an SQS call; `SqsError` naming the queue and the action when it fails."""
    try:
        return await call
    except (ClientError, BotoCoreError) as exc:
        raise SqsError(f"SQS {action} on {queue_url} failed: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

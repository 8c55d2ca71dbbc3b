"""GCP Pub/Sub triggers: a pull subscriber per leased `gcp_trigger` of delivery type `pull`.

Delivery is at-least-once. Messages are pulled in batches with the asynchronous gRPC client
(nothing blocks the event loop); while a batch is in flight (submitted as jobs, not yet acked)
its ack deadline is extended every third of it. `ack` acknowledges the batch once the supervisor
has committed its jobs; `nack` sets its deadline to zero, so Pub/Sub redelivers it at once. A
crash, a lost ack or a listener closed before the ack leaves the messages to come back when their
deadline runs out, and the dedup key (the message id) maps each one to the job it became.

With `auto_acknowledge_msg` false the gateway never acknowledges: after the commit it stops
extending the deadline and Pub/Sub redelivers the message when it runs out (each redelivery maps
to the same job); the event's info then carries the `ack_id` for the runnable to acknowledge the
message itself.

Push triggers get their messages over HTTP (`gcp_push`), on every instance. Their lease holder
only sets up the subscription and checks every `recheck_interval_s` that it still pushes to the
gateway, so that a broken subscription shows in the trigger's status.

`ensure_subscription` is the subscription management of both: `create_update` creates the
subscription, or updates its push config and ack deadline; `existing` only checks that it exists,
belongs to the topic and delivers the way the trigger says.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Final, TypeVar

import grpc
from google.api_core import exceptions as google_errors
from google.oauth2 import service_account
from google.pubsub_v1 import PublisherAsyncClient, SubscriberAsyncClient, types
from google.pubsub_v1.services.publisher.transports import PublisherGrpcAsyncIOTransport
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcAsyncIOTransport

from gateway.errors import GatewayError
from gateway.listeners.base import Batch, ListenerFactory
from gateway.listeners.gcp_config import (
    GcpResource,
    GcpTriggerConfig,
    parse_resource,
    push_path,
    validate_trigger,
)
from gateway.listeners.lease import Lease, TriggerRef
from gateway.resources import resource_value
from gateway.store import Store
from gateway.triggers.event import Event

logger = logging.getLogger(__name__)

T = TypeVar("T")
PUBSUB_SCOPE: Final = "https://www.googleapis.com/auth/pubsub"
DEFAULT_ACK_DEADLINE_S: Final = 10
ResourceLoader = Callable[[str, str], Awaitable[Any]]
"""Reads a resource's value by workspace and path (`resource_value` on a store)."""
ClientOpener = Callable[[GcpResource], Awaitable["PubSubClients"]]
"""Opens Pub/Sub clients for a resource (`PubSubClients.open`)."""


class PubSubError(GatewayError):
    """Pub/Sub refused a call or cannot be reached; the message names what and where."""


class SubscriptionMismatch(PubSubError):
    """The subscription is missing, or is not what the trigger needs; fix it or the trigger."""


@dataclass(frozen=True, slots=True)
class GcpOptions:
    """How the gateway's Pub/Sub listeners behave.

    A batch in flight has its ack deadline extended every `extend_every_s`, by default a third
    of the deadline. `push_base_url` is the gateway's public URL: with it, `create_update` push
    triggers get their subscription pointed at the gateway; without it, their subscription is
    only checked.
    """

    max_messages: int = 100
    pull_timeout_s: float = 30.0
    extend_every_s: float | None = None
    recheck_interval_s: float = 300.0
    push_base_url: str | None = None

    def push_endpoint(self, trigger: TriggerRef) -> str | None:
        """The URL Pub/Sub pushes the trigger's messages to, when the public URL is known."""
        if self.push_base_url is None:
            return None
        return self.push_base_url.rstrip("/") + push_path(trigger.workspace_id, trigger.path)


class PubSubClients:
    """An open subscriber and publisher client (the publisher only reads topics)."""

    def __init__(
        self,
        subscriber: SubscriberAsyncClient,
        publisher: PublisherAsyncClient,
        closers: Sequence[Callable[[], Awaitable[Any]]],
    ) -> None:
        self.subscriber = subscriber
        self.publisher = publisher
        self._closers = closers

    @classmethod
    async def open(cls, resource: GcpResource) -> PubSubClients:
        """Clients for the resource's key, or for its emulator without credentials."""
        if resource.emulator_host is not None:
            channel = grpc.aio.insecure_channel(resource.emulator_host)
            return cls(
                SubscriberAsyncClient(transport=SubscriberGrpcAsyncIOTransport(channel=channel)),
                PublisherAsyncClient(transport=PublisherGrpcAsyncIOTransport(channel=channel)),
                [channel.close],
            )
        # Parsing the private key is CPU work: off the event loop.
        credentials = await asyncio.to_thread(
            service_account.Credentials.from_service_account_info,
            resource.service_account_info(),
            scopes=[PUBSUB_SCOPE],
        )
        subscriber = SubscriberAsyncClient(credentials=credentials)
        publisher = PublisherAsyncClient(credentials=credentials)
        return cls(subscriber, publisher, [subscriber.transport.close, publisher.transport.close])

    async def close(self) -> None:
        """Close the channels; idempotent."""
        closers, self._closers = self._closers, []
        for close in closers:
            await close()


async def ensure_subscription(
    clients: PubSubClients,
    config: GcpTriggerConfig,
    resource: GcpResource,
    trigger: TriggerRef,
    *,
    push_endpoint: str | None,
) -> types.Subscription:
    """Create, update or check the trigger's subscription (see the module docstring).

    `push_endpoint` is where a push subscription must deliver; None when it is not known, in
    which case a push subscription is checked but neither created nor changed.
    """
    topic = config.topic_path(resource.project_id)
    name = config.subscription_path(resource.project_id)
    try:
        await clients.publisher.get_topic(topic=topic)
    except google_errors.NotFound:
        raise SubscriptionMismatch(f"Topic {topic} does not exist") from None
    except google_errors.GoogleAPIError as exc:
        raise PubSubError(f"cannot read topic {topic}: {_describe(exc)}") from exc
    existing = await _pubsub_call(
        f"read subscription {name}", _subscription_or_none(clients.subscriber, name)
    )
    manages = config.subscription_mode == "create_update" and (
        config.delivery_type == "pull" or push_endpoint is not None
    )
    if not manages:
        if existing is None and config.subscription_mode == "create_update":
            raise SubscriptionMismatch(
                f"push subscription {name} does not exist, and the gateway cannot create it "
                "without knowing its own public URL"
            )
        if existing is None:
            raise SubscriptionMismatch(
                f"subscription {name} does not exist; create it, or let the gateway create it "
                "with subscription_mode create_update"
            )
        _check_subscription(existing, config, resource, trigger, topic)
        return existing
    wanted = _push_config(config, resource, push_endpoint)
    if existing is None:
        created = await _pubsub_call(
            f"create subscription {name}",
            clients.subscriber.create_subscription(
                request=types.Subscription(
                    name=name,
                    topic=topic,
                    push_config=wanted,
                    ack_deadline_seconds=config.ack_deadline or 0,
                )
            ),
        )
        logger.info(
            "gcp trigger %s: created %s subscription %s on %s",
            trigger,
            config.delivery_type,
            name,
            topic,
            extra=_extra(trigger, "subscription_created"),
        )
        return created
    if existing.topic != topic:
        raise SubscriptionMismatch(
            f"subscription {name} belongs to {existing.topic}, not {topic}: a subscription "
            "cannot change topic; choose another subscription_id"
        )
    changed: list[str] = []
    update = types.Subscription(name=name)
    if existing.push_config != wanted:
        update.push_config = wanted
        changed.append("push_config")
    if config.ack_deadline is not None and existing.ack_deadline_seconds != config.ack_deadline:
        update.ack_deadline_seconds = config.ack_deadline
        changed.append("ack_deadline_seconds")
    if not changed:
        return existing
    updated = await _pubsub_call(
        f"update subscription {name}",
        clients.subscriber.update_subscription(
            request=types.UpdateSubscriptionRequest(
                subscription=update, update_mask={"paths": changed}
            )
        ),
    )
    logger.info(
        "gcp trigger %s: updated %s of subscription %s",
        trigger,
        ", ".join(changed),
        name,
        extra=_extra(trigger, "subscription_updated"),
    )
    return updated


def _push_config(
    config: GcpTriggerConfig, resource: GcpResource, push_endpoint: str | None
) -> types.PushConfig:
    if config.delivery_type == "pull" or push_endpoint is None:
        return types.PushConfig()
    push = types.PushConfig(push_endpoint=push_endpoint)
    delivery = config.delivery_config
    if delivery is not None and delivery.authenticate:
        push.oidc_token = types.PushConfig.OidcToken(
            service_account_email=resource.client_email or "",
            audience=delivery.audience or push_endpoint,
        )
    return push


def _check_subscription(
    existing: types.Subscription,
    config: GcpTriggerConfig,
    resource: GcpResource,
    trigger: TriggerRef,
    topic: str,
) -> None:
    name = existing.name
    if existing.topic != topic:
        raise SubscriptionMismatch(f"subscription {name} belongs to {existing.topic}, not {topic}")
    endpoint = existing.push_config.push_endpoint
    if config.delivery_type == "pull":
        if endpoint:
            raise SubscriptionMismatch(
                f"subscription {name} pushes to {endpoint}; a pull trigger needs a pull "
                "subscription"
            )
        return
    expected = push_path(trigger.workspace_id, trigger.path)
    if not endpoint.endswith(expected):
        raise SubscriptionMismatch(
            f"subscription {name} pushes to {endpoint or 'nowhere (it is a pull subscription)'}"
            f", not to <gateway>{expected}"
        )
    delivery = config.delivery_config
    signer = existing.push_config.oidc_token.service_account_email
    if delivery is not None and delivery.authenticate and signer != resource.client_email:
        raise SubscriptionMismatch(
            f"subscription {name} signs its pushes as {signer or 'nobody'}, not as the "
            f"resource's service account {resource.client_email}"
        )


async def _subscription_or_none(
    subscriber: SubscriberAsyncClient, name: str
) -> types.Subscription | None:
    try:
        return await subscriber.get_subscription(subscription=name)
    except google_errors.NotFound:
        return None


@dataclass(frozen=True, slots=True)
class GcpAckToken:
    """A batch's number and the ack ids of its messages."""

    number: int
    ack_ids: tuple[str, ...]


class GcpPullListener:
    """Pulls one subscription for one leased trigger; see the module docstring for acking."""

    kind: ClassVar[str] = "gcp"
    delivery_guarantee: ClassVar[str] = "at-least-once"

    def __init__(
        self,
        lease: Lease,
        resources: ResourceLoader,
        options: GcpOptions,
        open_clients: ClientOpener | None = None,
    ) -> None:
        self._lease = lease
        self._resources = resources
        self._options = options
        self._open_clients = open_clients if open_clients is not None else PubSubClients.open
        self._config: GcpTriggerConfig | None = None
        self._clients: PubSubClients | None = None
        self._subscription = ""
        self._deadline_s = DEFAULT_ACK_DEADLINE_S
        self._numbers = itertools.count()
        self._in_flight: dict[int, asyncio.Task[None]] = {}  # batch number -> deadline extender

    @property
    def config(self) -> GcpTriggerConfig:
        """The trigger's configuration, read by `connect`."""
        if self._config is None:
            raise RuntimeError(f"gcp trigger {self._lease.trigger} is not connected")
        return self._config

    @property
    def subscription(self) -> str:
        """The full name of the subscription pulled."""
        return self._subscription

    @property
    def ack_deadline_s(self) -> int:
        """The ack deadline batches get: the trigger's, else the subscription's."""
        return self._deadline_s

    async def connect(self) -> None:
        """Read the trigger and its resource, open the clients and set up the subscription."""
        config = validate_trigger(self._lease.row)
        self._config = config
        resource = parse_resource(
            await self._resources(self._lease.trigger.workspace_id, config.gcp_resource_path)
        )
        self._clients = await self._open_clients(resource)
        subscription = await ensure_subscription(
            self._clients, config, resource, self._lease.trigger, push_endpoint=None
        )
        self._subscription = subscription.name
        self._deadline_s = (
            config.ack_deadline or subscription.ack_deadline_seconds or DEFAULT_ACK_DEADLINE_S
        )

    async def consume(self) -> AsyncIterator[Batch]:
        """Yield each non-empty pull as a batch; the next pull waits for its ack or nack."""
        subscriber = self._require_clients().subscriber
        keep_ack_id = not self.config.auto_acknowledge_msg
        while True:
            try:
                response = await subscriber.pull(
                    subscription=self._subscription,
                    max_messages=self._options.max_messages,
                    timeout=self._options.pull_timeout_s,
                )
            except google_errors.DeadlineExceeded:
                continue
            except google_errors.GoogleAPIError as exc:
                raise PubSubError(
                    f"cannot pull from subscription {self._subscription}: {_describe(exc)}"
                ) from exc
            received = list(response.received_messages)
            if not received:
                continue
            events = [
                to_event(message, self._subscription, keep_ack_id=keep_ack_id)
                for message in received
            ]
            token = GcpAckToken(next(self._numbers), tuple(m.ack_id for m in received))
            self._in_flight[token.number] = asyncio.create_task(
                self._keep_leased(token.ack_ids),
                name=f"gcp-deadline:{self._lease.trigger}:{token.number}",
            )
            yield Batch(events=events, ack_token=token)

    async def ack(self, batch: Batch) -> None:
        """Acknowledge the batch (once); with `auto_acknowledge_msg` false, leave it be."""
        token: GcpAckToken = batch.ack_token
        if not await self._land(token) or not self.config.auto_acknowledge_msg:
            return
        await _pubsub_call(
            f"acknowledge messages on {self._subscription}",
            self._require_clients().subscriber.acknowledge(
                subscription=self._subscription, ack_ids=list(token.ack_ids)
            ),
        )

    async def nack(self, batch: Batch) -> None:
        """Set the batch's ack deadline to zero (once), so Pub/Sub redelivers it at once."""
        token: GcpAckToken = batch.ack_token
        if await self._land(token):
            await self._modify_deadline(token.ack_ids, 0)

    async def close(self) -> None:
        """Stop extending deadlines and close the clients; unacked messages come back later."""
        extenders = list(self._in_flight.values())
        self._in_flight.clear()
        for extender in extenders:
            extender.cancel()
        if extenders:
            await asyncio.wait(extenders)
        clients, self._clients = self._clients, None
        if clients is not None:
            await clients.close()

    def _require_clients(self) -> PubSubClients:
        if self._clients is None:
            raise RuntimeError(f"gcp trigger {self._lease.trigger} is not connected")
        return self._clients

    async def _land(self, token: GcpAckToken) -> bool:
        """Stop extending the batch's deadline; False when it was acked or nacked before."""
        extender = self._in_flight.pop(token.number, None)
        if extender is None:
            return False
        extender.cancel()
        await asyncio.wait([extender])
        return True

    async def _keep_leased(self, ack_ids: Sequence[str]) -> None:
        every_s = self._options.extend_every_s or self._deadline_s / 3
        while True:
            await asyncio.sleep(every_s)
            try:
                await self._modify_deadline(ack_ids, self._deadline_s)
            except PubSubError as exc:
                logger.warning(
                    "gcp trigger %s: ack deadline not extended, a batch in flight may be "
                    "delivered again (its jobs are reused): %s",
                    self._lease.trigger,
                    exc,
                    extra=_extra(self._lease.trigger, "extend_failed"),
                )

    async def _modify_deadline(self, ack_ids: Sequence[str], seconds: int) -> None:
        await _pubsub_call(
            f"modify ack deadlines on {self._subscription}",
            self._require_clients().subscriber.modify_ack_deadline(
                subscription=self._subscription,
                ack_ids=list(ack_ids),
                ack_deadline_seconds=seconds,
            ),
        )


class GcpPushWatch:
    """The lease holder of a push trigger: sets up its subscription and keeps checking it.

    Its stream never yields: the messages come over HTTP to every instance (`gcp_push`).
    """

    kind: ClassVar[str] = "gcp"
    delivery_guarantee: ClassVar[str] = "at-least-once"

    def __init__(
        self,
        lease: Lease,
        resources: ResourceLoader,
        options: GcpOptions,
        open_clients: ClientOpener | None = None,
    ) -> None:
        self._lease = lease
        self._resources = resources
        self._options = options
        self._open_clients = open_clients if open_clients is not None else PubSubClients.open
        self._clients: PubSubClients | None = None

    async def connect(self) -> None:
        """Set up (or check) the push subscription once."""
        await self._check()

    def consume(self) -> AsyncIterator[Batch]:
        """A stream without batches that fails when the subscription stops pushing to us."""
        return _Watching(self._check, self._options.recheck_interval_s)

    async def ack(self, batch: Batch) -> None:
        """Nothing to acknowledge: pushes are answered by the HTTP endpoint."""

    async def nack(self, batch: Batch) -> None:
        """Nothing to redeliver: pushes are answered by the HTTP endpoint."""

    async def close(self) -> None:
        """Close the clients; idempotent."""
        clients, self._clients = self._clients, None
        if clients is not None:
            await clients.close()

    async def _check(self) -> None:
        config = validate_trigger(self._lease.row)
        resource = parse_resource(
            await self._resources(self._lease.trigger.workspace_id, config.gcp_resource_path)
        )
        if self._clients is None:
            self._clients = await self._open_clients(resource)
        await ensure_subscription(
            self._clients,
            config,
            resource,
            self._lease.trigger,
            push_endpoint=self._options.push_endpoint(self._lease.trigger),
        )


class _Watching:
    """An async iterator that re-runs `check` every `interval_s` and never yields."""

    def __init__(self, check: Callable[[], Awaitable[None]], interval_s: float) -> None:
        self._check = check
        self._interval_s = interval_s

    def __aiter__(self) -> _Watching:
        return self

    async def __anext__(self) -> Batch:
        while True:
            await asyncio.sleep(self._interval_s)
            await self._check()


def listener_factory(store: Store, options: GcpOptions | None = None) -> ListenerFactory:
    """Builds the listener of a claimed GCP trigger: a pull subscriber or a push watch."""
    chosen = options if options is not None else GcpOptions()

    def build(lease: Lease) -> GcpPullListener | GcpPushWatch:
        resources = partial(resource_value, store)
        if lease.row.get("delivery_type") == "push":
            return GcpPushWatch(lease, resources, chosen)
        return GcpPullListener(lease, resources, chosen)

    return build


def to_event(
    received: types.ReceivedMessage, subscription: str, *, keep_ack_id: bool = False
) -> Event:
    """The event of one pulled message; the payload is its data in base64, as pushes carry it.

    Info: `message_id`, `subscription`, `delivery_type` ``"pull"``, and when the message has
    them `ordering_key`, `attributes` and `publish_time` (RFC 3339); `ack_id` with
    `keep_ack_id`.
    """
    message = received.message
    info: dict[str, Any] = {
        "message_id": message.message_id,
        "subscription": subscription,
        "delivery_type": "pull",
    }
    if message.ordering_key:
        info["ordering_key"] = message.ordering_key
    if message.attributes:
        info["attributes"] = dict(message.attributes)
    if message.publish_time:
        info["publish_time"] = message.publish_time.rfc3339()
    if keep_ack_id:
        info["ack_id"] = received.ack_id
    data = bytes(message.data)
    return Event(
        kind="gcp",
        payload=base64.b64encode(data).decode("ascii"),
        info=info,
        dedup_key=message.message_id or None,
        raw=data,
    )


async def _pubsub_call(what: str, call: Awaitable[T]) -> T:
    """Await a Pub/Sub call; `PubSubError` saying what failed when it does."""
    try:
        return await call
    except google_errors.GoogleAPIError as exc:
        raise PubSubError(f"cannot {what}: {_describe(exc)}") from exc


def _extra(trigger: TriggerRef, action: str) -> dict[str, str]:
    return {"action": action, "trigger": str(trigger), "kind": trigger.kind}


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

"""NATS triggers: core subjects (at-most-once) and JetStream durable pull consumers (at-least-once).

Core NATS has neither acknowledgements nor memory. A message published while nobody listens, or
received but not yet turned into a job when the process dies or the connection drops, is gone, so
core events carry no dedup key and `NatsListener.delivery_guarantee` is ``"at-most-once"``. A batch
the job sink refused (nack) stays in the listener and is offered again on the same connection.

JetStream (`use_jetstream`): the durable pull consumer `consumer_name` of stream `stream_name` is
fetched in batches. The stream is created with the trigger's subjects when it does not exist (an
existing stream is never changed); the consumer is created when missing (explicit acks, new
messages only, filtered on the trigger's subjects) and its filter is updated when the trigger's
subjects changed. Each message is acked once its batch's jobs are committed and nak'ed when they
could not be; one fetched and never acked is redelivered by the server after the consumer's
`ack_wait`. The dedup key ``<stream>/<stream sequence>`` turns a redelivery into the job it made
already, so `JetStreamListener.delivery_guarantee` is ``"at-least-once"``. On PostgreSQL, which
writes batches side by side, `PipelinedJetStreamListener` fetches the next batch while the
previous one is submitted; the server delivers no more than the consumer's `max_ack_pending`
unacked messages, so a fetch then asks for at most that many over the batches in flight (500 of
the server's default 1000). SQLite's single writer takes one batch at a time: there the smaller
fetches would only cost.

The client does not reconnect on its own: a lost connection ends `consume` with
`NatsConnectionError` and the lease supervisor connects a new listener with backoff.

The client library keeps one value per header name (the last one), so ``headers`` in the trigger
info holds one-element lists even when a publisher repeated a header.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, ClassVar, Final, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.client import RawCredentials
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy

from gateway.errors import GatewayError
from gateway.listeners.base import Batch, ListenerFactory
from gateway.listeners.batching import collect_batch
from gateway.listeners.connection_loss import unless_lost
from gateway.listeners.lease import Lease
from gateway.listeners.nats_config import NatsTriggerConfig, parse_resource, validate_trigger
from gateway.resources import resource_value
from gateway.store import Store
from gateway.triggers.event import Event

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S: Final = 5
MAX_BATCH: Final = 1000
BATCH_WINDOW_S: Final = 0.01
FETCH_TIMEOUT_S: Final = 5.0
_QUEUE_SIZE: Final = 10 * MAX_BATCH

T = TypeVar("T")


class NatsConnectionError(GatewayError):
    """The NATS server cannot be reached, refused us, or dropped the connection."""


# 1. Configuration: `nats_config` (NatsTriggerConfig, validate_trigger, NatsResource)


# 2. Listeners -----------------------------------------------------------------------------------


class _NatsConnection(ABC):
    """What both listeners share: the connection, its loss, and closing it."""

    kind: ClassVar[str] = "nats"
    delivery_guarantee: ClassVar[str]

    def __init__(self, lease: Lease, store: Store, *, max_batch: int) -> None:
        self._lease = lease
        self._store = store
        self._max_batch = max_batch
        self._config: NatsTriggerConfig | None = None
        self._servers: list[str] = []
        self._nc: NatsClient | None = None
        self._lost: asyncio.Future[None] | None = None
        self._last_error: Exception | None = None
        self._closing = False
        self._tokens = itertools.count()

    @property
    def config(self) -> NatsTriggerConfig:
        """The trigger's configuration, read by `connect`."""
        if self._config is None:
            raise RuntimeError(f"nats trigger {self._lease.trigger} is not connected")
        return self._config

    async def connect(self) -> None:
        """Connect to the resource's servers and subscribe; NatsConnectionError on failure."""
        trigger = self._lease.trigger
        self._config = validate_trigger(self._lease.row)
        resource = parse_resource(
            await resource_value(self._store, trigger.workspace_id, self.config.nats_resource_path)
        )
        self._servers = list(resource.servers)
        self._lost = asyncio.get_running_loop().create_future()
        options: dict[str, Any] = dict(resource.credentials())
        if "creds" in options:
            options["user_credentials"] = RawCredentials(options.pop("creds"))
        if resource.wants_tls():
            options["tls"] = await asyncio.to_thread(ssl.create_default_context)
        try:
            self._nc = await nats.connect(
                resource.urls(),
                name=f"gateway {trigger.kind} trigger {trigger}",
                allow_reconnect=False,
                # Each server is tried twice, at once: the supervisor owns the backoff.
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                connect_timeout=CONNECT_TIMEOUT_S,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                closed_cb=self._on_disconnected,
                **options,
            )
        except ImportError as exc:
            raise NatsConnectionError(
                f"NKEY and JWT authentication need the nkeys package (nats-py[nkeys]): {exc}"
            ) from exc
        except (OSError, nats.errors.Error) as exc:
            cause = self._last_error if isinstance(exc, nats.errors.NoServersError) else exc
            raise NatsConnectionError(
                f"cannot connect to NATS at {', '.join(self._servers)}: {_describe(cause or exc)}"
            ) from exc
        await self._subscribe(self._nc)

    @abstractmethod
    async def _subscribe(self, nc: NatsClient) -> None:
        """Start receiving on the new connection; NatsConnectionError on failure."""

    async def close(self) -> None:
        """Close the connection; idempotent, safe after cancellation."""
        self._closing = True
        nc, self._nc = self._nc, None
        lost, self._lost = self._lost, None
        try:
            if nc is not None and not nc.is_closed:
                await nc.close()
        finally:
            if lost is not None and lost.done() and not lost.cancelled():
                lost.exception()  # retrieved here: nobody waits on it any more
            elif lost is not None:
                lost.cancel()

    async def _guard(self, step: Awaitable[T]) -> T:
        """Await a library call; NatsConnectionError when it fails or the connection drops."""
        lost = self._lost
        if lost is None:
            raise RuntimeError(f"nats trigger {self._lease.trigger} is not connected")
        try:
            return await unless_lost(step, lost)
        except nats.errors.TimeoutError:
            raise
        except (OSError, nats.errors.Error) as exc:
            raise NatsConnectionError(f"NATS request failed: {_describe(exc)}") from exc

    async def _on_error(self, error: Exception) -> None:
        self._last_error = error
        if isinstance(error, nats.errors.SlowConsumerError):
            # Core NATS semantics: the client drops what it cannot buffer.
            logger.warning(
                "nats trigger %s: messages dropped, the listener falls behind: %s",
                self._lease.trigger,
                error,
                extra=self._extra("messages_dropped"),
            )
            return
        if isinstance(error, OSError | nats.errors.StaleConnectionError):
            self._fail(f"the connection to the NATS server was lost: {_describe(error)}")
        else:
            self._fail(f"the NATS server reported an error: {_describe(error)}")

    async def _on_disconnected(self) -> None:
        self._fail("the connection to the NATS server was lost")

    def _fail(self, reason: str) -> None:
        if not self._closing and self._lost is not None and not self._lost.done():
            self._lost.set_exception(NatsConnectionError(reason))

    def _extra(self, action: str) -> dict[str, str]:
        trigger = self._lease.trigger
        return {"action": action, "trigger": str(trigger), "kind": trigger.kind}


class NatsListener(_NatsConnection):
    """Core NATS: one subscription per subject, messages batched over a short window."""

    delivery_guarantee: ClassVar[str] = "at-most-once"

    def __init__(
        self,
        lease: Lease,
        store: Store,
        *,
        max_batch: int = MAX_BATCH,
        batch_window_s: float = BATCH_WINDOW_S,
    ) -> None:
        super().__init__(lease, store, max_batch=max_batch)
        self._batch_window_s = batch_window_s
        self._queue: asyncio.Queue[Msg] = asyncio.Queue(maxsize=_QUEUE_SIZE)
        self._delivered: dict[int, Batch] = {}
        self._nacked: deque[Batch] = deque()

    async def _subscribe(self, nc: NatsClient) -> None:
        try:
            for subject in self.config.subjects:
                await nc.subscribe(subject, cb=self._queue.put)
            await nc.flush()
        except (OSError, nats.errors.Error) as exc:
            raise NatsConnectionError(
                f"cannot subscribe to {', '.join(self.config.subjects)}: {_describe(exc)}"
            ) from exc

    async def consume(self) -> AsyncIterator[Batch]:
        """Yield batches of the messages received on the subjects; nacked batches first."""
        while True:
            if self._nacked:
                batch = self._nacked.popleft()
            else:
                messages = await self._guard(self._collect())
                events = [to_event(msg, self._servers, jetstream=False) for msg in messages]
                batch = Batch(events=events, ack_token=next(self._tokens))
            self._delivered[batch.ack_token] = batch
            yield batch

    async def _collect(self) -> list[Msg]:
        """The next message, and those that arrive within the batch window after it."""
        return await collect_batch(self._queue, self._max_batch, self._batch_window_s)

    async def ack(self, batch: Batch) -> None:
        """Forget the batch: core NATS has nothing to acknowledge."""
        self._delivered.pop(batch.ack_token, None)

    async def nack(self, batch: Batch) -> None:
        """Offer the batch again before new messages (lost if the connection drops first)."""
        if self._delivered.pop(batch.ack_token, None) is not None:
            self._nacked.append(batch)


class JetStreamListener(_NatsConnection):
    """A durable JetStream pull consumer: fetched in batches, acked after the jobs commit."""

    delivery_guarantee: ClassVar[str] = "at-least-once"
    max_batches_in_flight: ClassVar[int] = 1

    def __init__(
        self,
        lease: Lease,
        store: Store,
        *,
        max_batch: int = MAX_BATCH,
        fetch_timeout_s: float = FETCH_TIMEOUT_S,
        ack_wait_s: float | None = None,
    ) -> None:
        super().__init__(lease, store, max_batch=max_batch)
        self._fetch_timeout_s = fetch_timeout_s
        self._ack_wait_s = ack_wait_s
        self._pull: JetStreamContext.PullSubscription | None = None
        self._pull_size = max_batch
        self._fetched: dict[int, list[Msg]] = {}

    async def _subscribe(self, nc: NatsClient) -> None:
        config = self.config
        stream, consumer = str(config.stream_name), str(config.consumer_name)
        js = nc.jetstream()
        try:
            await self._ensure_stream(js, stream)
            info = await self._ensure_consumer(nc, stream, consumer)
            self._pull = await js.pull_subscribe_bind(durable=consumer, stream=stream)
            self._pull_size = pull_size(
                self._max_batch, info.config.max_ack_pending, self.max_batches_in_flight
            )
        except (OSError, nats.errors.Error) as exc:
            raise NatsConnectionError(
                f"cannot set up JetStream consumer {consumer!r} of stream {stream!r}: "
                f"{_describe(exc)}"
            ) from exc

    async def _ensure_stream(self, js: JetStreamContext, stream: str) -> None:
        try:
            await js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(name=stream, subjects=list(self.config.subjects))
            logger.info(
                "nats trigger %s: created JetStream stream %s for %s",
                self._lease.trigger,
                stream,
                ", ".join(self.config.subjects),
                extra=self._extra("stream_created"),
            )

    async def _ensure_consumer(self, nc: NatsClient, stream: str, consumer: str) -> ConsumerInfo:
        js = nc.jetstream()
        subjects = list(self.config.subjects)
        info: ConsumerInfo
        try:
            info = await js.consumer_info(stream, consumer)
        except nats.js.errors.NotFoundError:
            wanted = ConsumerConfig(
                name=consumer,
                durable_name=consumer,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.NEW,
                ack_wait=self._ack_wait_s,
                **_filter(subjects),
            )
            info = await js.add_consumer(stream, wanted)
            logger.info(
                "nats trigger %s: created JetStream consumer %s of stream %s",
                self._lease.trigger,
                consumer,
                stream,
                extra=self._extra("consumer_created"),
            )
        if info.config.deliver_subject:
            raise NatsConnectionError(
                f"JetStream consumer {consumer!r} of stream {stream!r} is a push consumer and "
                "the gateway pulls: delete it or choose another consumer_name"
            )
        if _filters_of(info.config) != set(subjects):
            info = await js.add_consumer(stream, info.config.evolve(**_filter(subjects)))
        if _filters_of(info.config) != set(subjects):
            # Servers before 2.10 ignore `filter_subjects` and would deliver the whole stream.
            raise NatsConnectionError(
                f"JetStream consumer {consumer!r} of stream {stream!r} filters "
                f"{sorted(_filters_of(info.config)) or 'nothing'} instead of {sorted(subjects)}: "
                f"NATS server {nc.connected_server_version} cannot filter on several subjects "
                "(2.10 can); use one subject (wildcards allowed) or upgrade the server"
            )
        return info

    async def consume(self) -> AsyncIterator[Batch]:
        """Yield the fetched messages batch by batch; wait while the consumer has none."""
        pull = self._pull
        if pull is None:
            raise RuntimeError(f"nats trigger {self._lease.trigger} is not connected")
        while True:
            try:
                messages = await self._guard(
                    pull.fetch(self._pull_size, timeout=self._fetch_timeout_s)
                )
            except nats.errors.TimeoutError:
                continue
            events = [to_event(msg, self._servers, jetstream=True) for msg in messages]
            token = next(self._tokens)
            self._fetched[token] = messages
            yield Batch(events=events, ack_token=token)

    async def ack(self, batch: Batch) -> None:
        """Ack each message of the batch (once)."""
        await _settle(self._fetched.pop(batch.ack_token, []), ack=True)

    async def nack(self, batch: Batch) -> None:
        """Nak each message of the batch (once): the server redelivers them at once."""
        await _settle(self._fetched.pop(batch.ack_token, []), ack=False)


class PipelinedJetStreamListener(JetStreamListener):
    """A JetStream pull consumer that fetches the next batch while the previous one commits."""

    # Each message is acked or nak'ed on its own: a nack of the later batch first leaves every
    # message of both batches to be delivered again.
    max_batches_in_flight: ClassVar[int] = 2


def pull_size(max_batch: int, max_ack_pending: int | None, batches_in_flight: int) -> int:
    """Messages per fetch: at most `max_batch`, and no more than the consumer lets the batches
    in flight hold unacked (`max_ack_pending`, none or -1 for no limit)."""
    if max_ack_pending is None or max_ack_pending <= 0:
        return max_batch
    return max(1, min(max_batch, max_ack_pending // batches_in_flight))


async def _settle(messages: Sequence[Msg], *, ack: bool) -> None:
    try:
        for msg in messages:
            await (msg.ack() if ack else msg.nak())
    except nats.errors.Error as exc:
        verb = "ack" if ack else "nak"
        raise NatsConnectionError(f"cannot {verb} JetStream messages: {_describe(exc)}") from exc


def _filter(subjects: Sequence[str]) -> dict[str, Any]:
    if len(subjects) == 1:
        return {"filter_subject": subjects[0], "filter_subjects": None}
    return {"filter_subject": None, "filter_subjects": list(subjects)}


def _filters_of(config: ConsumerConfig) -> set[str]:
    filters = set(config.filter_subjects or ())
    if config.filter_subject:
        filters.add(config.filter_subject)
    return filters


def listener_factory(store: Store, max_batch: int = MAX_BATCH) -> ListenerFactory:
    """Builds the listener of a claimed NATS trigger: JetStream (pipelined on PostgreSQL) or
    core, as its row says; a batch (one job transaction) holds at most `max_batch` messages."""
    jetstream = PipelinedJetStreamListener if store.dialect == "postgresql" else JetStreamListener

    def build(lease: Lease) -> NatsListener | JetStreamListener:
        if lease.row.get("use_jetstream"):
            return jetstream(lease, store, max_batch=max_batch)
        return NatsListener(lease, store, max_batch=max_batch)

    return build


# 3. Events --------------------------------------------------------------------------------------


def to_event(msg: Msg, servers: Sequence[str], *, jetstream: bool) -> Event:
    """The event of one NATS message; JetStream messages are keyed by stream and sequence."""
    info: dict[str, Any] = {
        "servers": list(servers),
        "subject": msg.subject,
        "length": len(msg.data),
    }
    headers = dict(msg.headers or {})
    status = headers.pop("Status", None)
    description = headers.pop("Description", None)
    if headers:
        info["headers"] = {name: [value] for name, value in headers.items()}
    if status is not None and status.isdecimal():  # isdigit() takes "²", which int() refuses
        info["status"] = int(status)
    if description:
        info["description"] = description
    dedup_key = None
    if jetstream:
        metadata = msg.metadata
        dedup_key = f"{metadata.stream}/{metadata.sequence.stream}"
    return Event(kind="nats", payload=msg.data, info=info, dedup_key=dedup_key, raw=msg.data)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

"""MQTT triggers: a paho-mqtt client driven by the event loop, acking QoS 1 after the job commits.

What each subscription QoS gives (`MqttTriggerConfig.delivery_guarantee` sums it up):

* QoS 1, at-least-once. Acks are manual: the PUBACK of a message is sent by `ack`, after its
  batch's jobs are committed. A message not acked when the connection ends (crash, network, lease
  lost) is resent by the broker on the next connection of the same session. Events have no dedup
  key: MQTT messages carry no identity, and a packet id is reused as soon as it is acknowledged,
  so a key built from client id, topic and packet id would swallow later, different messages.
  A redelivery therefore makes a second job; that happens only when the connection ends between
  the commit and the PUBACK.
* QoS 2, at-most-once across a lost connection. The client library answers PUBLISH with PUBREC
  before handing the message over, and after PUBREC the broker never sends it again: a message
  received and not yet committed when the connection ends is lost, and none is duplicated. The
  handshake is completed (PUBCOMP) on receipt, since holding it back guards nothing and would
  leave the broker a message in flight for good if the process died first.
* QoS 0, at-most-once.

A batch the job sink refused (nack) is offered again on the same connection, still unacked.
Sessions are persistent by default (see `mqtt_config`); a message on a topic the trigger no longer
subscribes (a subscription an earlier configuration left in the session) is acked and dropped.

paho runs on the event loop (`mqtt_loop`). The client does not reconnect on its own: a lost
connection ends `consume` with `MqttConnectionError` and the lease supervisor connects a new
listener with backoff.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, ClassVar, Final, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.errors import GatewayError
from gateway.listeners.base import Batch, ListenerFactory
from gateway.listeners.batching import collect_batch
from gateway.listeners.connection_loss import unless_lost
from gateway.listeners.lease import Lease
from gateway.listeners.mqtt_config import (
    MqttResource,
    MqttTls,
    MqttTriggerConfig,
    parse_resource,
    validate_trigger,
)
from gateway.listeners.mqtt_loop import PahoOnLoop, describe_error
from gateway.resources import resource_value
from gateway.store import Store
from gateway.triggers.event import Event

logger = logging.getLogger(__name__)

KEEPALIVE_S: Final = 60
CONNACK_TIMEOUT_S: Final = 10.0
MAX_BATCH: Final = 100
BATCH_WINDOW_S: Final = 0.01
# Reading stops while this many messages wait for `consume`, so a flood cannot fill the memory.
_HIGH_WATER: Final = 10 * MAX_BATCH
_PUBLISH_PROPERTIES: Final = (
    "PayloadFormatIndicator", "MessageExpiryInterval", "TopicAlias", "ResponseTopic",
    "CorrelationData", "UserProperty", "SubscriptionIdentifier", "ContentType",
)  # fmt: skip

T = TypeVar("T")


class MqttConnectionError(GatewayError):
    """The MQTT broker cannot be reached, refused us, or dropped the connection."""


# 1. Configuration: `mqtt_config` (MqttTriggerConfig, validate_trigger, MqttResource)


def _tls_context(tls: MqttTls) -> ssl.SSLContext:
    """A client context trusting the resource's CA (system roots when none), with its cert."""
    context = ssl.create_default_context(cadata=tls.ca_certificate or None)
    if tls.client_certificate and tls.client_key:
        # The ssl module loads a certificate chain from files only; the folder is private (0700).
        with tempfile.TemporaryDirectory() as folder:
            chain = Path(folder, "client.pem")
            chain.write_text(f"{tls.client_certificate.strip()}\n{tls.client_key.strip()}\n")
            context.load_cert_chain(chain)
    return context


# 2. Listener ------------------------------------------------------------------------------------


class MqttListener:
    """One MQTT client session: subscribes the trigger's topics, batches what arrives."""

    kind: ClassVar[str] = "mqtt"

    def __init__(
        self,
        lease: Lease,
        store: Store,
        *,
        max_batch: int = MAX_BATCH,
        batch_window_s: float = BATCH_WINDOW_S,
        connack_timeout_s: float = CONNACK_TIMEOUT_S,
    ) -> None:
        self._lease = lease
        self._store = store
        self._max_batch = max_batch
        self._batch_window_s = batch_window_s
        self._connack_timeout_s = connack_timeout_s
        self._config: MqttTriggerConfig | None = None
        self._client: mqtt.Client | None = None
        self._io: PahoOnLoop | None = None
        self._connack: asyncio.Future[ReasonCode] | None = None
        self._subacks: dict[int, asyncio.Future[list[ReasonCode]]] = {}
        self._lost: asyncio.Future[None] | None = None
        self._closed = False
        self._aliases = TopicAliases()
        self._queue: asyncio.Queue[tuple[mqtt.MQTTMessage, str]] = asyncio.Queue()
        self._tokens = itertools.count()
        self._delivered: dict[int, tuple[Batch, list[int]]] = {}
        self._nacked: deque[tuple[Batch, list[int]]] = deque()

    @property
    def config(self) -> MqttTriggerConfig:
        """The trigger's configuration, read by `connect`."""
        if self._config is None:
            raise RuntimeError(f"mqtt trigger {self._lease.trigger} is not connected")
        return self._config

    async def connect(self) -> None:
        """Connect, wait for CONNACK and SUBACK; MqttConnectionError on failure."""
        trigger = self._lease.trigger
        config = self._config = validate_trigger(self._lease.row)
        resource = parse_resource(
            await resource_value(self._store, trigger.workspace_id, config.mqtt_resource_path)
        )
        loop = asyncio.get_running_loop()
        self._lost = loop.create_future()
        self._connack = loop.create_future()
        client = self._client = await self._new_client(config, resource)
        io = self._io = PahoOnLoop(client, self._fail)
        options: dict[str, Any] = {}
        if config.client_version == "v5":
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = config.v5_config.session_expiry_interval
            properties.TopicAliasMaximum = config.v5_config.topic_alias_maximum
            options = {"clean_start": config.v5_config.clean_start, "properties": properties}
        where = f"{resource.broker}:{resource.port}"
        try:
            await io.connect(resource.broker, resource.port, KEEPALIVE_S, **options)
        except (OSError, ValueError) as exc:
            raise MqttConnectionError(
                f"cannot reach the MQTT broker at {where}: {describe_error(exc)}"
            ) from exc
        try:
            async with asyncio.timeout(self._connack_timeout_s):
                reason = await self._guard(self._connack)
        except TimeoutError:
            raise MqttConnectionError(
                f"no answer from the MQTT broker at {where} within "
                f"{self._connack_timeout_s:.0f} seconds of connecting"
            ) from None
        except MqttConnectionError as exc:
            # A TLS 1.3 broker checks the client certificate after the handshake, so a refused
            # certificate shows up here.
            raise MqttConnectionError(
                f"the MQTT broker at {where} closed the connection before accepting it "
                f"(as brokers do when they refuse a TLS client certificate): {exc}"
            ) from exc
        if reason.is_failure:
            raise MqttConnectionError(f"the MQTT broker at {where} refused us: {reason}")
        await self._subscribe(client)

    async def _new_client(self, config: MqttTriggerConfig, resource: MqttResource) -> mqtt.Client:
        v5 = config.client_version == "v5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id_for(self._lease.trigger),
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else config.v3_config.clean_session,
            manual_ack=True,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        credentials = resource.credentials
        if credentials is not None and credentials.username:
            client.username_pw_set(credentials.username, credentials.password)
        if resource.tls is not None and resource.tls.enabled:
            try:
                context = await asyncio.to_thread(_tls_context, resource.tls)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                raise MqttConnectionError(
                    f"the TLS settings of resource {config.mqtt_resource_path} cannot be used: "
                    f"{describe_error(exc)}"
                ) from exc
            client.tls_set_context(context)
        return client

    async def _subscribe(self, client: mqtt.Client) -> None:
        wanted = self.config.subscribe_topics
        if self.config.client_version == "v5":
            result, mid = client.subscribe([(s.topic, SubscribeOptions(qos=s.qos)) for s in wanted])
        else:
            result, mid = client.subscribe([(s.topic, int(s.qos)) for s in wanted])
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise MqttConnectionError(f"cannot subscribe: {mqtt.error_string(result)}")
        suback = self._subacks[mid] = asyncio.get_running_loop().create_future()
        granted = await self._guard(suback)
        refused = [
            f"{s.topic} ({code})"
            for s, code in zip(wanted, granted, strict=False)
            if code.is_failure
        ]
        if refused:
            raise MqttConnectionError(f"the MQTT broker refused to subscribe {', '.join(refused)}")

    async def consume(self) -> AsyncIterator[Batch]:
        """Yield batches of the messages received; nacked batches first."""
        while True:
            if self._nacked:
                batch, mids = self._nacked.popleft()
            else:
                received = await self._guard(self._collect())
                if self._io is not None and self._queue.qsize() < _HIGH_WATER:
                    self._io.resume_reading()
                v5 = self.config.client_version == "v5"
                events = [to_event(message, v5=v5, topic=topic) for message, topic in received]
                mids = [message.mid for message, _ in received if message.qos == 1]
                batch = Batch(events=events, ack_token=next(self._tokens))
            self._delivered[batch.ack_token] = (batch, mids)
            yield batch

    async def _collect(self) -> list[tuple[mqtt.MQTTMessage, str]]:
        """The next message, and those that arrive within the batch window after it."""
        return await collect_batch(self._queue, self._max_batch, self._batch_window_s)

    async def ack(self, batch: Batch) -> None:
        """Send the PUBACK of each QoS 1 message of the batch (once)."""
        delivered = self._delivered.pop(batch.ack_token, None)
        if delivered is None or not delivered[1]:
            return
        if self._client is None or self._lost is None or self._lost.done():
            # Unacked, the messages come again on the next connection of the session.
            raise MqttConnectionError("cannot ack: the connection to the MQTT broker is gone")
        for mid in delivered[1]:
            self._client.ack(mid, 1)

    async def nack(self, batch: Batch) -> None:
        """Offer the batch again before new messages, still unacked."""
        delivered = self._delivered.pop(batch.ack_token, None)
        if delivered is not None:
            self._nacked.append(delivered)

    async def close(self) -> None:
        """Disconnect (the session stays on the broker); idempotent, safe after cancellation."""
        if self._closed:
            return
        self._closed = True
        io, self._io = self._io, None
        self._client = None
        try:
            if io is not None:
                await io.close()
        finally:
            for future in (self._lost, self._connack, *self._subacks.values()):
                if future is not None and future.done() and not future.cancelled():
                    future.exception()  # retrieved here: nobody waits on it any more
                elif future is not None:
                    future.cancel()

    async def _guard(self, step: Awaitable[T]) -> T:
        """Await `step`, or raise the connection's failure if it comes first."""
        lost = self._lost
        if lost is None:
            raise RuntimeError(f"mqtt trigger {self._lease.trigger} is not connected")
        return await unless_lost(step, lost)

    def _fail(self, reason: str) -> None:
        if not self._closed and self._lost is not None and not self._lost.done():
            self._lost.set_exception(MqttConnectionError(reason))

    # paho's callbacks, run on the loop's thread.

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(reason)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._fail(f"the connection to the MQTT broker was lost ({reason})")

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        suback = self._subacks.pop(mid, None)
        if suback is not None and not suback.done():
            suback.set_result(reasons)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        topic = self._aliases.topic_of(message)
        if topic is None or not self._subscribed(topic):
            logger.warning(
                "mqtt trigger %s: dropped a message on %s, a topic it does not subscribe",
                self._lease.trigger,
                topic or "an unknown topic alias",
                extra={"action": "message_dropped", "trigger": str(self._lease.trigger)},
            )
            client.ack(message.mid, message.qos)
            return
        if message.qos == 2:
            client.ack(message.mid, 2)
        self._queue.put_nowait((message, topic))
        if self._io is not None and self._queue.qsize() >= _HIGH_WATER:
            self._io.pause_reading()

    def _subscribed(self, topic: str) -> bool:
        return any(
            mqtt.topic_matches_sub(_filter_of(s.topic), topic) for s in self.config.subscribe_topics
        )


def _filter_of(subscription: str) -> str:
    """The topic filter of a subscription (a shared one is ``$share/<group>/<filter>``)."""
    if subscription.startswith("$share/"):
        return subscription.split("/", 2)[-1]
    return subscription


def listener_factory(store: Store) -> ListenerFactory:
    """Builds the listener of a claimed MQTT trigger."""
    return lambda lease: MqttListener(lease, store)


# 3. Events --------------------------------------------------------------------------------------


class TopicAliases:
    """The v5 topic aliases a broker set on one connection; paho leaves resolving them to us."""

    def __init__(self) -> None:
        self._topics: dict[int, str] = {}

    def topic_of(self, message: mqtt.MQTTMessage) -> str | None:
        """The message's topic; None when it names an alias the broker never set."""
        alias = getattr(message.properties, "TopicAlias", None)
        if alias is None:
            return message.topic
        if message.topic:
            self._topics[alias] = message.topic
        return self._topics.get(alias)


def to_event(message: mqtt.MQTTMessage, *, v5: bool, topic: str | None = None) -> Event:
    """The event of one MQTT message; `topic` overrides the message's (a resolved v5 alias)."""
    payload = bytes(message.payload)
    info = {
        "topic": message.topic if topic is None else topic,
        "retain": bool(message.retain),
        "pkid": message.mid,
        "qos": message.qos,
        "v5": _v5_info(message.properties) if v5 else None,
    }
    return Event(kind="mqtt", payload=payload, info=info, dedup_key=None, raw=payload)


def _v5_info(properties: Properties | None) -> dict[str, Any] | None:
    """The PUBLISH properties as Windmill shows them; None when the message had none."""
    if properties is None or not any(hasattr(properties, p) for p in _PUBLISH_PROPERTIES):
        return None
    correlation = getattr(properties, "CorrelationData", None)
    return {
        "payload_format_indicator": getattr(properties, "PayloadFormatIndicator", None),
        "topic_alias": getattr(properties, "TopicAlias", None),
        "response_topic": getattr(properties, "ResponseTopic", None),
        "correlation_data": None if correlation is None else list(correlation),
        "user_properties": [[k, v] for k, v in getattr(properties, "UserProperty", [])],
        "subscription_identifiers": list(getattr(properties, "SubscriptionIdentifier", [])),
        "content_type": getattr(properties, "ContentType", None),
    }

"""Fuzzing every listener's pure `to_event` with random messages.

Whatever a source delivers must become an `Event` (or, for pgoutput and a GCP push, the one
error its listener or endpoint expects: `PgoutputError`, `PushRefused` 400), and every event
must then become job args or be set aside with `ArgsError`, which the pipeline quarantines.
Anything else would stop a listener on one message that the source delivers again and again.
"""

from __future__ import annotations

import contextlib
import json
import struct
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from aiokafka import ConsumerRecord
from google.pubsub_v1 import types
from hypothesis import given, settings
from hypothesis import strategies as st
from nats.aio.msg import Msg
from paho.mqtt.client import MQTTMessage
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.listeners import gcp, kafka, mqtt, nats, postgres, sqs, websocket
from gateway.listeners.gcp_push import PushRefused, parse_push
from gateway.listeners.lease import TriggerRef
from gateway.listeners.pgoutput import (
    ARRAY_ELEMENTS,
    UNCHANGED_TOAST,
    Column,
    Delete,
    Insert,
    PgoutputError,
    Relation,
    Update,
    convert_text,
    decode,
)
from gateway.listeners.postgres import ChangePosition
from gateway.scripts import Script
from gateway.store.storable import holds_unstorable_text
from gateway.triggers.args import ArgsError, RunnableShape
from gateway.triggers.event import Event
from gateway.triggers.runnables import Runnable, TriggerTarget
from tests.unit.triggers.jobs import job_of

EXAMPLES = settings(max_examples=60, deadline=None)
SHAPES = (
    RunnableShape(),
    RunnableShape(main_params=frozenset({"msg"}), main_param_types={"payload": "array"}),
    RunnableShape(has_preprocessor=True),
    RunnableShape(has_preprocessor=True, preprocessor_params=("wm_trigger",)),
)
SCRIPT = Script("ws", "f/t/s", 1, "", "python3", {}, "a", datetime(2026, 1, 1, tzinfo=UTC))
KAFKA_TRIGGER = kafka.KafkaTriggerInfo(brokers=("b1:9092",), group_id="g")
NATS_SERVERS = ("nats://n1:4222",)

texts = st.text(max_size=40)
# Random bytes, and text with a NUL, which PostgreSQL cannot store in job args.
optional_bytes = st.none() | st.binary(max_size=64) | st.just(b"a\x00b")
# Integers as wide as the wire formats carry, and some beyond.
wide_ints = st.integers(min_value=-(2**63), max_value=2**64)
# Deep nesting, as JSON and as PostgreSQL array text, next to plain random text.
deep_json = st.integers(1, 3000).map(lambda n: "[" * n + "]" * n)
deep_array = st.integers(1, 3000).map(lambda n: "{" * n + "}" * n)
column_texts = texts | deep_json | deep_array | st.from_regex(r"\A\{[^{}]*\}\Z", fullmatch=True)


def becomes_job_or_is_quarantined(event: Event) -> None:
    """`event` becomes a job with storable args for every runnable shape, or ArgsError (the sink
    quarantines it, under a storable dedup key)."""
    assert isinstance(event, Event)
    assert not holds_unstorable_text(event.dedup_key)
    target = TriggerTarget(
        TriggerRef(event.kind, "ws", "u/a/t"), SCRIPT.path, False, "u/a", "a@x", None, None, False
    )
    for shape in SHAPES:
        try:
            job = job_of(target, event, Runnable(SCRIPT, shape))
        except ArgsError:
            continue
        json.dumps(job.args, allow_nan=False)
        assert not holds_unstorable_text(job.args)


# Kafka -----------------------------------------------------------------------------------------


@st.composite
def kafka_records(draw: st.DrawFn) -> ConsumerRecord[bytes, bytes]:
    key, value = draw(optional_bytes), draw(optional_bytes)
    return ConsumerRecord(
        topic=draw(st.from_regex(r"\A[a-zA-Z0-9._-]{1,249}\Z")),  # what Kafka allows
        partition=draw(st.integers(0, 2**31 - 1)),
        offset=draw(st.integers(0, 2**63 - 1)),
        timestamp=draw(wide_ints),
        timestamp_type=draw(st.sampled_from([0, 1])),
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=-1 if key is None else len(key),
        serialized_value_size=-1 if value is None else len(value),
        headers=tuple(draw(st.lists(st.tuples(texts, optional_bytes), max_size=5))),
    )


@EXAMPLES
@given(kafka_records())
def test_any_kafka_record_becomes_an_event(record: ConsumerRecord[bytes, bytes]) -> None:
    becomes_job_or_is_quarantined(kafka.to_event(record, KAFKA_TRIGGER))


# NATS ------------------------------------------------------------------------------------------

nats_headers = st.none() | st.dictionaries(
    st.sampled_from(["Status", "Description", "Nats-Msg-Id"]) | texts,
    st.sampled_from(["503", "²", "٣"]) | texts,
    max_size=5,
)
# JetStream sets the reply subject of every message it delivers: stream, consumer, counts.
js_tokens = st.from_regex(r"\A[A-Za-z0-9_-]{1,12}\Z")  # stream and consumer names NATS allows
js_replies = st.builds(
    "$JS.ACK.{}.{}.{}.{}.{}.{}.{}".format,
    js_tokens,
    js_tokens,
    *(st.integers(0, 2**63 - 1) for _ in range(5)),
)


def nats_message(subject: str, data: bytes, headers: dict[str, str] | None, reply: str) -> Msg:
    return Msg(_client=cast(Any, None), subject=subject, reply=reply, data=data, headers=headers)


@EXAMPLES
@given(texts, st.binary(max_size=64), nats_headers)
def test_any_core_nats_message_becomes_an_event(
    subject: str, data: bytes, headers: dict[str, str] | None
) -> None:
    event = nats.to_event(nats_message(subject, data, headers, ""), NATS_SERVERS, jetstream=False)

    becomes_job_or_is_quarantined(event)


@EXAMPLES
@given(texts, st.binary(max_size=64), nats_headers, js_replies)
def test_any_jetstream_message_becomes_an_event(
    subject: str, data: bytes, headers: dict[str, str] | None, reply: str
) -> None:
    message = nats_message(subject, data, headers, reply)

    becomes_job_or_is_quarantined(nats.to_event(message, NATS_SERVERS, jetstream=True))


# MQTT ------------------------------------------------------------------------------------------

v5_properties = st.fixed_dictionaries(
    {},
    optional={
        "PayloadFormatIndicator": st.integers(0, 1),
        "TopicAlias": st.integers(1, 65535),
        "ResponseTopic": texts,
        "CorrelationData": st.binary(max_size=16),
        "UserProperty": st.lists(st.tuples(texts, texts), max_size=3),
        "SubscriptionIdentifier": st.lists(st.integers(1, 268_435_455), max_size=3),
        "ContentType": texts,
    },
)


@EXAMPLES
@given(texts, st.binary(max_size=64), st.integers(0, 2), st.integers(0, 65535), v5_properties)
def test_any_mqtt_message_becomes_an_event(
    topic: str, payload: bytes, qos: int, mid: int, props: dict[str, Any]
) -> None:
    # MQTT topics are UTF-8 by the protocol; brokers refuse a PUBLISH whose topic is not.
    message = MQTTMessage(mid=mid, topic=topic.encode())
    message.payload = payload
    message.qos = qos
    message.properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    for name, value in props.items():
        setattr(message.properties, name, value)

    for v5 in (False, True):
        becomes_job_or_is_quarantined(mqtt.to_event(message, v5=v5))


# SQS -------------------------------------------------------------------------------------------

sqs_attribute_values = st.fixed_dictionaries(
    {"DataType": st.sampled_from(["String", "Number", "Binary", "String.custom"])},
    optional={"StringValue": st.none() | texts, "BinaryValue": optional_bytes},
)
sqs_messages = st.fixed_dictionaries(
    {"MessageId": st.uuids().map(str)},
    optional={
        "ReceiptHandle": st.none() | texts,
        "Body": st.none() | st.text(max_size=200),
        "MD5OfBody": texts,
        "Attributes": st.none() | st.dictionaries(texts, texts, max_size=4),
        "MessageAttributes": st.none() | st.dictionaries(texts, sqs_attribute_values, max_size=4),
    },
)


@EXAMPLES
@given(sqs_messages)
def test_any_sqs_message_becomes_an_event(message: dict[str, Any]) -> None:
    becomes_job_or_is_quarantined(sqs.to_event(message, "https://sqs.example/q"))


# GCP Pub/Sub -----------------------------------------------------------------------------------

pubsub_messages = st.builds(
    types.PubsubMessage,
    data=st.binary(max_size=64),
    message_id=st.integers(0, 2**63).map(str),
    attributes=st.dictionaries(texts, texts, max_size=4),
    ordering_key=texts,
    publish_time=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
    ),
)


@EXAMPLES
@given(pubsub_messages, texts, st.booleans())
def test_any_pulled_pubsub_message_becomes_an_event(
    message: types.PubsubMessage, ack_id: str, keep_ack_id: bool
) -> None:
    received = types.ReceivedMessage(ack_id=ack_id, message=message)

    event = gcp.to_event(received, "projects/p/subscriptions/s", keep_ack_id=keep_ack_id)

    becomes_job_or_is_quarantined(event)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
push_envelopes = st.fixed_dictionaries(
    {"message": st.dictionaries(
        st.sampled_from(["data", "attributes", "messageId", "message_id", "publishTime",
                         "publish_time", "orderingKey"]) | texts,
        json_values | st.binary(max_size=32).map(lambda b: b.hex()),
        max_size=6,
    )},
    optional={"subscription": json_values},
).map(lambda envelope: json.dumps(envelope).encode())  # fmt: skip
push_bodies = (
    st.binary(max_size=200)
    | st.just(b'{"message": {"data": "", "messageId": "1\\u0000"}, "subscription": "s"}')
    | push_envelopes
    | json_values.map(lambda value: json.dumps(value).encode())
    | deep_json.map(str.encode)
)
push_headers = st.dictionaries(
    st.sampled_from(["x-goog-pubsub-message-id", "x-goog-pubsub-subscription-name",
                     "authorization", "content-type"]) | texts.map(str.lower),
    texts,
    max_size=4,
)  # fmt: skip


@EXAMPLES
@given(push_bodies, push_headers)
def test_any_push_becomes_an_event_or_a_400(body: bytes, headers: dict[str, str]) -> None:
    try:
        event = parse_push(body, headers)
    except PushRefused as refused:
        assert refused.status == 400
        return
    becomes_job_or_is_quarantined(event)


# WebSocket -------------------------------------------------------------------------------------


@EXAMPLES
@given(st.text(max_size=200))
def test_any_websocket_text_frame_becomes_an_event(text: str) -> None:
    event = websocket.to_event(text, "wss://feed.example/ws", "u/a/ws", "key-1")

    becomes_job_or_is_quarantined(event)


# PostgreSQL (pgoutput) -------------------------------------------------------------------------

_TAGS = "BCORYIUDTM"


@EXAMPLES
@given(
    st.builds(bytes.__add__, st.sampled_from(_TAGS).map(str.encode), st.binary(max_size=80))
    | st.binary(max_size=80)
)
def test_any_replication_payload_decodes_or_is_a_pgoutput_error(payload: bytes) -> None:
    with contextlib.suppress(PgoutputError):
        decode(payload)


type_oids = st.sampled_from([16, 17, 20, 21, 23, 25, 26, 114, 700, 701, 1114, 1184, 3802])
any_type_oids = type_oids | st.sampled_from(sorted(ARRAY_ELEMENTS)) | st.integers(0, 2**32 - 1)


@EXAMPLES
@given(any_type_oids, column_texts)
def test_any_column_text_converts_to_a_json_value(type_oid: int, text: str) -> None:
    json.dumps(convert_text(type_oid, text), allow_nan=False)


@st.composite
def row_changes(draw: st.DrawFn) -> tuple[Insert | Update | Delete, Relation]:
    size = draw(st.integers(0, 4))
    columns = tuple(
        Column(f"c{index}", draw(any_type_oids), -1, draw(st.booleans())) for index in range(size)
    )
    values = st.lists(
        st.none() | st.just(UNCHANGED_TOAST) | column_texts, min_size=size, max_size=size
    ).map(tuple)
    relation = Relation(draw(st.integers(1, 2**32 - 1)), draw(texts), draw(texts), "d", columns)
    change: Insert | Update | Delete = draw(
        st.builds(Insert, st.just(relation.oid), values)
        | st.builds(Update, st.just(relation.oid), st.none() | values, st.just("O"), values)
        | st.builds(Delete, st.just(relation.oid), values, st.just("K"))
    )
    return change, relation


@EXAMPLES
@given(row_changes())
def test_any_row_change_becomes_an_event(change: tuple[Insert | Update | Delete, Relation]) -> None:
    message, relation = change
    position = ChangePosition("slot", 0x16_B374_D848, 0)

    becomes_job_or_is_quarantined(postgres.to_event(message, relation, position, b"raw"))


@pytest.mark.parametrize("microseconds", [-(2**63), 2**63 - 1])
def test_a_commit_time_beyond_the_calendar_is_a_pgoutput_error(microseconds: int) -> None:
    begin = b"B" + struct.pack("!QqI", 0x16_B374_D848, microseconds, 7)

    with pytest.raises(PgoutputError):
        decode(begin)

"""to_event: a Kafka record becomes an event; its value is the payload, its place the dedup key."""

from __future__ import annotations

import base64
from typing import Any

from aiokafka import ConsumerRecord

from gateway.listeners.kafka import KafkaTriggerInfo, to_event

TRIGGER = KafkaTriggerInfo(brokers=("b1:9092", "b2:9092"), group_id="windmill_ws_u_admin_t")


def record(**fields: Any) -> ConsumerRecord[bytes, bytes]:
    """A record as aiokafka returns it; `fields` override a typical one."""
    values: dict[str, Any] = {
        "topic": "orders",
        "partition": 2,
        "offset": 41,
        "timestamp": 1_795_710_805_354,
        "timestamp_type": 0,
        "key": b"order-7",
        "value": b'{"a":1}',
        "checksum": None,
        "serialized_key_size": 7,
        "serialized_value_size": 7,
        "headers": (("trace", b"abc"),),
    }
    values.update(fields)
    return ConsumerRecord(**values)


def test_the_payload_and_raw_bytes_are_the_record_value() -> None:
    event = to_event(record(), TRIGGER)

    assert event.kind == "kafka"
    assert event.payload == b'{"a":1}'
    assert event.raw == b'{"a":1}'


def test_the_dedup_key_is_the_records_place_in_the_topic() -> None:
    assert to_event(record(), TRIGGER).dedup_key == "orders/2/41"


def test_info_names_where_the_record_was_consumed() -> None:
    info = to_event(record(), TRIGGER).info

    assert info == {
        "brokers": ["b1:9092", "b2:9092"],
        "topic": "orders",
        "group_id": "windmill_ws_u_admin_t",
        "partition": 2,
        "offset": 41,
        "timestamp": 1_795_710_805_354,
        "key": "order-7",
        "headers": {"trace": ["abc"]},
    }


def test_headers_keep_repeated_names_in_record_order() -> None:
    headers = (("trace", b"t1"), ("tenant", b"acme"), ("trace", b"t2"))

    info = to_event(record(headers=headers), TRIGGER).info

    assert info["headers"] == {"trace": ["t1", "t2"], "tenant": ["acme"]}


def test_a_key_that_is_not_utf8_is_given_as_base64() -> None:
    info = to_event(record(key=b"\x80\x81"), TRIGGER).info

    assert info["key"] is None
    assert info["key_base64"] == base64.b64encode(b"\x80\x81").decode()


def test_header_values_that_are_not_utf8_are_given_as_base64_apart() -> None:
    headers = (("sig", b"\xff"), ("sig", b"ok"), ("empty", None))

    info = to_event(record(headers=headers), TRIGGER).info

    assert info["headers"] == {"sig": ["ok"], "empty": [None]}
    assert info["headers_base64"] == {"sig": [base64.b64encode(b"\xff").decode()]}


def test_a_record_without_key_timestamp_or_value_still_becomes_an_event() -> None:
    event = to_event(record(key=None, value=None, timestamp=-1, headers=()), TRIGGER)

    assert (event.payload, event.raw) == (b"", b"")
    assert event.info["key"] is None
    assert "key_base64" not in event.info
    assert event.info["timestamp"] is None
    assert event.info["headers"] == {}


def test_a_value_that_is_not_utf8_is_kept_byte_for_byte() -> None:
    event = to_event(record(value=b"\x00\xff\xfe"), TRIGGER)

    assert event.payload == event.raw == b"\x00\xff\xfe"

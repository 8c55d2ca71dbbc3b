"""`sqs.to_event` on messages as aiobotocore returns them, and the job args they become."""

from __future__ import annotations

from typing import Any

from gateway.listeners.sqs import to_event
from gateway.triggers.args import RunnableShape, build_args

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/orders"
MESSAGE: dict[str, Any] = {
    "MessageId": "8900414c-4c52-4030-9988-a4d3bec0f287",
    "ReceiptHandle": "AQEB-receipt",
    "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
    "Body": '{"order": 7}',
    "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795711507346"},
    "MessageAttributes": {
        "color": {"StringValue": "blue", "DataType": "String"},
        "size": {"StringValue": "3", "DataType": "Number.int"},
        "blob": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
    },
}


def test_a_message_becomes_an_event_keyed_by_its_message_id() -> None:
    event = to_event(MESSAGE, QUEUE)

    assert event.kind == "sqs"
    assert (event.payload, event.raw) == ('{"order": 7}', b'{"order": 7}')
    assert event.dedup_key == MESSAGE["MessageId"]
    assert event.info == {
        "queue_url": QUEUE,
        "message_id": MESSAGE["MessageId"],
        "receipt_handle": "AQEB-receipt",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795711507346"},
        "message_attributes": {
            "color": {"data_type": "String", "string_value": "blue"},
            "size": {"data_type": "Number.int", "string_value": "3"},
            "blob": {"data_type": "Binary", "binary_value": "AAE="},
        },
    }


def test_a_message_without_attributes_or_body() -> None:
    event = to_event({"MessageId": "m-1", "ReceiptHandle": "r"}, QUEUE)

    assert (event.payload, event.raw) == ("", b"")
    assert event.info["attributes"] == {}
    assert "message_attributes" not in event.info


def test_the_args_are_the_body_in_both_formats() -> None:
    event = to_event(MESSAGE, QUEUE)

    assert build_args(event, RunnableShape.from_schema({"properties": {"msg": {}}})) == {
        "msg": '{"order": 7}'
    }
    assert build_args(event, RunnableShape.from_schema(None)) == {"msg": '{"order": 7}'}


def test_a_preprocessor_gets_the_event_with_the_trigger_info() -> None:
    event = to_event(MESSAGE, QUEUE)

    v2 = build_args(event, RunnableShape(has_preprocessor=True, preprocessor_params=("event",)))
    v1 = build_args(
        event, RunnableShape(has_preprocessor=True, preprocessor_params=("msg", "wm_trigger"))
    )

    assert v2 == {"event": {"msg": '{"order": 7}', "kind": "sqs", **event.info}}
    assert v1 == {"msg": '{"order": 7}', "wm_trigger": {"kind": "sqs", "sqs": dict(event.info)}}

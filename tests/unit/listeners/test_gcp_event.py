"""Pub/Sub messages as events: pulled (`gcp.to_event`) and pushed (`gcp_push.parse_push`)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from google.pubsub_v1 import types

from gateway.listeners.gcp import to_event
from gateway.listeners.gcp_push import PushRefused, parse_push
from gateway.triggers.args import RunnableShape, build_args

SUBSCRIPTION = "projects/acme/subscriptions/orders"


def received(**message: object) -> types.ReceivedMessage:
    """A pulled message with ack id `ack-1`."""
    return types.ReceivedMessage(ack_id="ack-1", message=types.PubsubMessage(**message))


def test_a_pulled_message_becomes_an_event_keyed_by_its_id() -> None:
    event = to_event(
        received(
            data=b'{"a":1}',
            message_id="42",
            attributes={"region": "eu"},
            ordering_key="customer-7",
            publish_time=datetime(2026, 11, 26, 19, 13, 55, 749000, tzinfo=UTC),
        ),
        SUBSCRIPTION,
    )

    assert (event.kind, event.dedup_key, event.raw) == ("gcp", "42", b'{"a":1}')
    assert event.payload == "eyJhIjoxfQ=="
    assert event.info == {
        "message_id": "42",
        "subscription": SUBSCRIPTION,
        "delivery_type": "pull",
        "ordering_key": "customer-7",
        "attributes": {"region": "eu"},
        "publish_time": "2026-11-26T19:13:55.749Z",
    }


def test_a_bare_pulled_message_and_its_ack_id() -> None:
    event = to_event(received(data=b"", message_id="1"), SUBSCRIPTION, keep_ack_id=True)

    assert event.payload == ""
    assert event.info == {
        "message_id": "1",
        "subscription": SUBSCRIPTION,
        "delivery_type": "pull",
        "ack_id": "ack-1",
    }


def test_the_args_are_the_base64_data_in_both_formats() -> None:
    event = to_event(received(data=b'{"a":1}', message_id="42"), SUBSCRIPTION)

    assert build_args(event, RunnableShape()) == {"payload": "eyJhIjoxfQ=="}
    assert build_args(event, RunnableShape(has_preprocessor=True)) == {
        "event": {"payload": "eyJhIjoxfQ==", "kind": "gcp", **event.info}
    }


def wrapped(**message: object) -> bytes:
    """A wrapped push body."""
    return json.dumps({"message": message, "subscription": SUBSCRIPTION}).encode()


def test_a_wrapped_push_reads_either_spelling_of_its_fields() -> None:
    camel = parse_push(
        wrapped(data="aGk=", messageId="7", publishTime="2026-11-26T19:13:55Z", orderingKey="k"),
        {"content-type": "application/json", "authorization": "Bearer secret"},
    )
    snake = parse_push(
        wrapped(data="aGk=", message_id="7", publish_time="2026-11-26T19:13:55Z"),
        {"content-type": "application/json"},
    )

    assert (camel.payload, camel.raw, camel.dedup_key) == ("aGk=", b"hi", "7")
    assert camel.info == {
        "message_id": "7",
        "subscription": SUBSCRIPTION,
        "ordering_key": "k",
        "publish_time": "2026-11-26T19:13:55Z",
        "delivery_type": "push",
        "headers": {"content-type": "application/json"},
    }
    assert snake.info["message_id"] == snake.dedup_key == "7"
    assert snake.info["publish_time"] == "2026-11-26T19:13:55Z"


def test_an_unwrapped_push_is_the_raw_data_with_header_metadata() -> None:
    headers = {
        "x-goog-pubsub-message-id": "9",
        "x-goog-pubsub-subscription-name": SUBSCRIPTION,
        "x-goog-pubsub-publish-time": "2026-11-26T19:13:55Z",
    }
    event = parse_push(b"\x00binary", headers)

    assert (event.raw, event.dedup_key) == (b"\x00binary", "9")
    assert event.payload == base64.b64encode(b"\x00binary").decode()
    assert event.info["subscription"] == SUBSCRIPTION
    assert event.info["publish_time"] == "2026-11-26T19:13:55Z"
    assert event.info["headers"] == headers


def test_json_that_is_no_envelope_is_an_unwrapped_push_without_an_id() -> None:
    event = parse_push(b'{"order": 1}', {})

    assert event.payload == base64.b64encode(b'{"order": 1}').decode()
    assert event.dedup_key is None
    assert "message_id" not in event.info


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff not json", "neither a Pub/Sub push envelope"),
        (wrapped(data="%%%", messageId="1"), "not base64"),
    ],
)
def test_a_body_that_is_no_push_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(PushRefused, match=reason) as raised:
        parse_push(body, {})
    assert raised.value.status == 400

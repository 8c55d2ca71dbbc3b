"""NATS messages, as the client library hands them over, become events (reference 2.3)."""

from __future__ import annotations

from typing import Any, cast

from nats.aio.msg import Msg

from gateway.listeners.nats import to_event

SERVERS = ["nats://n1:4222", "n2:4222"]
# What a durable pull consumer delivers: the reply subject carries stream, consumer, delivery
# count, stream sequence, consumer sequence, timestamp and pending count.
JETSTREAM_REPLY = "$JS.ACK.ORDERS.gateway.2.4217.12.1795710889603693787.0"


def recorded(subject: str, data: bytes, headers: dict[str, str] | None, reply: str = "") -> Msg:
    """A message as the client builds it from the wire; it is never acked here."""
    return Msg(_client=cast(Any, None), subject=subject, reply=reply, data=data, headers=headers)


def test_a_core_message_has_the_subject_length_and_no_dedup_key() -> None:
    event = to_event(recorded("orders.eu", b'{"a":1}', None), SERVERS, jetstream=False)

    assert (event.kind, event.payload, event.raw, event.dedup_key) == (
        "nats",
        b'{"a":1}',
        b'{"a":1}',
        None,
    )
    assert event.info == {"servers": SERVERS, "subject": "orders.eu", "length": 7}


def test_headers_become_lists_of_values() -> None:
    message = recorded("orders", b"", {"Trace": "t-1", "Nats-Msg-Id": "m-9"})

    event = to_event(message, SERVERS, jetstream=False)

    assert event.info["headers"] == {"Trace": ["t-1"], "Nats-Msg-Id": ["m-9"]}
    assert event.info["length"] == 0


def test_a_status_line_becomes_status_and_description() -> None:
    message = recorded("inbox.1", b"", {"Status": "503", "Description": "No Responders"})

    event = to_event(message, SERVERS, jetstream=False)

    assert event.info == {
        "servers": SERVERS,
        "subject": "inbox.1",
        "length": 0,
        "status": 503,
        "description": "No Responders",
    }


def test_a_jetstream_message_is_keyed_by_stream_and_stream_sequence() -> None:
    message = recorded("orders.eu", b"\xff\x00", {"Nats-Msg-Id": "m-1"}, JETSTREAM_REPLY)

    event = to_event(message, SERVERS, jetstream=True)

    assert event.dedup_key == "ORDERS/4217"
    assert event.payload == b"\xff\x00"
    assert event.info == {
        "servers": SERVERS,
        "subject": "orders.eu",
        "length": 2,
        "headers": {"Nats-Msg-Id": ["m-1"]},
    }


def test_a_redelivery_carries_the_key_of_the_first_delivery() -> None:
    first = recorded("orders", b"x", None, "$JS.ACK.ORDERS.gateway.1.7.3.1795710889603693787.5")
    again = recorded("orders", b"x", None, "$JS.ACK.ORDERS.gateway.2.7.9.1795710899603693787.0")

    keys = {to_event(m, SERVERS, jetstream=True).dedup_key for m in (first, again)}

    assert keys == {"ORDERS/7"}

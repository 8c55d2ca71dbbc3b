"""A received message becomes one event per recipient: payload, info and the dedup key."""

from __future__ import annotations

import hashlib

from gateway.email.addresses import EmailTarget
from gateway.email.intake import ReceivedMessage, to_event
from gateway.listeners.lease import TriggerRef
from gateway.triggers.args import RunnableShape, build_args

RAW = b"Message-ID: <m1@shop.example>\r\nSubject: Hi\r\n\r\nhello\r\n"
TARGET = EmailTarget(
    recipient="orders+k=v@gw.example",
    trigger=TriggerRef("email", "ops", "u/alice/orders"),
    row={"mode": "enabled"},
    extra_args={"k": "v"},
)


def test_the_payload_has_the_raw_and_parsed_email_and_the_extra_args() -> None:
    event = to_event(ReceivedMessage.read(RAW, "zoe@shop.example"), TARGET)

    assert event.kind == "email"
    assert event.raw == RAW
    assert event.payload["raw_email"] == RAW.decode()
    assert event.payload["parsed_email"]["subject"] == "Hi"
    assert event.payload["email_extra_args"] == {"k": "v"}
    assert event.info == {"recipient": "orders+k=v@gw.example", "sender": "zoe@shop.example"}


def test_an_address_without_extra_args_gives_none() -> None:
    plain = EmailTarget("orders@gw.example", TARGET.trigger, TARGET.row, {})

    assert "email_extra_args" not in to_event(ReceivedMessage.read(RAW, None), plain).payload


def test_the_dedup_key_is_the_recipient_and_the_message_id() -> None:
    assert to_event(ReceivedMessage.read(RAW, None), TARGET).dedup_key == (
        "orders+k=v@gw.example/<m1@shop.example>"
    )


def test_a_message_without_message_id_is_keyed_by_its_hash() -> None:
    raw = b"Subject: Hi\r\n\r\nhello\r\n"

    key = to_event(ReceivedMessage.read(raw, None), TARGET).dedup_key

    assert key == f"orders+k=v@gw.example/sha256:{hashlib.sha256(raw).hexdigest()}"


def test_a_long_message_id_is_hashed() -> None:
    message_id = "<" + "x" * 300 + "@shop.example>"
    raw = f"Message-ID: {message_id}\r\n\r\nhello\r\n".encode()

    key = to_event(ReceivedMessage.read(raw, None), TARGET).dedup_key

    assert key == f"orders+k=v@gw.example/sha256:{hashlib.sha256(message_id.encode()).hexdigest()}"


def test_a_bounce_has_no_sender() -> None:
    assert ReceivedMessage.read(RAW, "").sender is None


def test_job_args_are_the_payload_with_or_without_a_preprocessor() -> None:
    event = to_event(ReceivedMessage.read(RAW, "zoe@shop.example"), TARGET)

    plain = build_args(event, RunnableShape())
    preprocessed = build_args(event, RunnableShape(has_preprocessor=True))

    assert set(plain) == {"raw_email", "parsed_email", "email_extra_args"}
    assert preprocessed["event"]["kind"] == "email"
    assert preprocessed["event"]["recipient"] == "orders+k=v@gw.example"

"""WebSocket trigger configuration: URL forms, initial messages, heartbeat, stored NULLs."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import InvalidInput
from gateway.listeners.websocket_config import (
    RawMessage,
    RunnableCall,
    RunnableResultMessage,
    validate_trigger,
)


def row(**columns: Any) -> dict[str, Any]:
    """A websocket_trigger row with a plain URL, `columns` overriding."""
    return {"path": "u/alice/feed", "url": "wss://feed.example.org/ws", **columns}


@pytest.mark.parametrize(
    "url", ["ws://127.0.0.1:9/feed", "wss://feed.example.org/ws?token=x", "$script:f/ws/url"]
)
def test_websocket_urls_and_runnables_are_accepted(url: str) -> None:
    assert validate_trigger(row(url=url)).url == url


@pytest.mark.parametrize("url", ["http://feed.example.org", "$script:", "$var:u/alice/url", ""])
def test_other_urls_are_refused_naming_the_field(url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_trigger(row(url=url))

    assert refused.value.field == "url"


def test_a_script_url_names_the_runnable_and_its_args() -> None:
    config = validate_trigger(row(url="$script:f/ws/url", url_runnable_args={"region": "eu"}))

    assert config.url_runnable == RunnableCall(path="f/ws/url", args={"region": "eu"})


def test_a_flow_url_is_marked_as_a_flow() -> None:
    call = validate_trigger(row(url="$flow:f/ws/url_flow")).url_runnable

    assert call is not None
    assert (call.path, call.is_flow) == ("f/ws/url_flow", True)


def test_a_plain_url_has_no_runnable() -> None:
    assert validate_trigger(row()).url_runnable is None


def test_stored_nulls_mean_no_initial_messages_and_no_url_args() -> None:
    config = validate_trigger(row(initial_messages=None, url_runnable_args=None, heartbeat=None))

    assert (config.initial_messages, config.url_runnable_args, config.heartbeat) == ([], {}, None)


def test_initial_messages_are_raw_text_or_a_runnable_result() -> None:
    config = validate_trigger(
        row(
            initial_messages=[
                {"raw_message": "subscribe"},
                {"runnable_result": {"path": "f/ws/hello", "args": None, "is_flow": False}},
            ]
        )
    )

    assert config.initial_messages == [
        RawMessage(raw_message="subscribe"),
        RunnableResultMessage(runnable_result=RunnableCall(path="f/ws/hello")),
    ]


@pytest.mark.parametrize(
    ("stored", "sent"),
    [
        ('"subscribe"', "subscribe"),
        ("subscribe", "subscribe"),
        ('"', '"'),
        ('""', ""),
        ('"a', '"a'),
    ],
)
def test_a_raw_message_loses_the_outer_quotes_the_ui_stores(stored: str, sent: str) -> None:
    assert RawMessage(raw_message=stored).text == sent


def test_an_initial_message_of_neither_form_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_trigger(row(initial_messages=[{"text": "hello"}]))

    assert refused.value.field.startswith("initial_messages.0")


def test_a_heartbeat_needs_a_positive_interval() -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_trigger(row(heartbeat={"interval_secs": 0, "message": "ping"}))

    assert refused.value.field == "heartbeat.interval_secs"

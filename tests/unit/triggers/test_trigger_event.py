"""Event: the immutable record every listener produces."""

import dataclasses

import pytest

from gateway.triggers.event import Event


def test_an_event_cannot_be_changed_after_it_is_made() -> None:
    event = Event(kind="nats", payload=b"x", info={"subject": "s"}, dedup_key="s/1", raw=b"x")

    with pytest.raises(dataclasses.FrozenInstanceError):
        event.kind = "kafka"  # type: ignore[misc]


def test_an_event_has_slots_and_no_instance_dict() -> None:
    event = Event(kind="sqs", payload="body", info={}, dedup_key=None, raw=b"body")

    assert not hasattr(event, "__dict__")

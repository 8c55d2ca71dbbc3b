"""MQTT trigger and resource configuration: defaults, Windmill's shapes, errors naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import InvalidInput
from gateway.listeners.lease import TriggerRef
from gateway.listeners.mqtt_config import (
    DEFAULT_SESSION_EXPIRY_S,
    parse_resource,
    validate_trigger,
)

ROW = {
    "mqtt_resource_path": "u/alice/mqtt",
    "subscribe_topics": [{"topic": "plant/+/temp", "qos": "qos1"}],
    "client_version": "v5",
    "client_id": None,
    "v3_config": None,
    "v5_config": None,
}


def test_windmill_qos_names_and_plain_levels_are_accepted() -> None:
    topics = [{"topic": "a", "qos": "qos2"}, {"topic": "b", "qos": 0}, {"topic": "c"}]

    config = validate_trigger({**ROW, "subscribe_topics": topics})

    assert [s.qos for s in config.subscribe_topics] == [2, 0, 0]


def test_sessions_are_persistent_unless_the_trigger_says_otherwise() -> None:
    config = validate_trigger(ROW)
    clean = validate_trigger(
        {**ROW, "v3_config": {"clean_session": True}, "v5_config": {"clean_start": True}}
    )

    assert config.v3_config.clean_session is False
    assert config.v5_config.clean_start is False
    assert config.v5_config.session_expiry_interval == DEFAULT_SESSION_EXPIRY_S
    assert config.v5_config.topic_alias_maximum == 65535
    assert (clean.v3_config.clean_session, clean.v5_config.clean_start) == (True, True)


def test_the_default_client_id_is_stable_short_and_distinct_per_trigger() -> None:
    config = validate_trigger(ROW)
    trigger = TriggerRef("mqtt", "acme", "u/alice/plant")

    client_id = config.client_id_for(trigger)

    assert client_id == config.client_id_for(TriggerRef("mqtt", "acme", "u/alice/plant"))
    assert len(client_id) <= 23
    assert client_id.replace("-", "").isalnum()
    assert client_id != config.client_id_for(TriggerRef("mqtt", "other", "u/alice/plant"))
    assert validate_trigger({**ROW, "client_id": "mine"}).client_id_for(trigger) == "mine"
    assert validate_trigger({**ROW, "client_id": ""}).client_id_for(trigger) == client_id


@pytest.mark.parametrize(
    ("qos_levels", "guarantee"),
    [
        ([1], "at-least-once"),
        ([1, 1], "at-least-once"),
        ([1, 0], "at-most-once"),
        ([2], "at-most-once"),
    ],
)
def test_only_qos1_everywhere_is_at_least_once(qos_levels: list[int], guarantee: str) -> None:
    topics = [{"topic": f"t/{n}", "qos": qos} for n, qos in enumerate(qos_levels)]

    assert validate_trigger({**ROW, "subscribe_topics": topics}).delivery_guarantee == guarantee


@pytest.mark.parametrize(
    ("change", "field", "match"),
    [
        ({"subscribe_topics": []}, "subscribe_topics", "at least 1"),
        ({"subscribe_topics": [{"topic": ""}]}, "subscribe_topics.0.topic", "at least 1"),
        (
            {"subscribe_topics": [{"topic": "a/#/b"}]},
            "subscribe_topics.0.topic",
            "last topic level",
        ),
        (
            {"subscribe_topics": [{"topic": "a/b+"}]},
            "subscribe_topics.0.topic",
            "whole topic level",
        ),
        (
            {"subscribe_topics": [{"topic": "a", "qos": "qos3"}]},
            "subscribe_topics.0.qos",
            "0, 1 or 2",
        ),
        ({"client_version": "v4"}, "client_version", "'v3' or 'v5'"),
        ({"v5_config": {"session_expiry_interval": -1}}, "v5_config.session_expiry_interval", "0"),
        ({"v5_config": {"topic_alias_maximum": 70000}}, "v5_config.topic_alias_maximum", "65535"),
        ({"mqtt_resource_path": ""}, "mqtt_resource_path", "at least 1"),
    ],
)
def test_an_unusable_trigger_names_the_field(
    change: dict[str, Any], field: str, match: str
) -> None:
    with pytest.raises(InvalidInput, match=match) as raised:
        validate_trigger({**ROW, **change})

    assert raised.value.field == field


def test_a_windmill_resource_is_read_with_its_defaults() -> None:
    resource = parse_resource(
        {"broker": "mq", "credentials": {"username": "", "password": ""}, "tls": {"enabled": False}}
    )

    assert (resource.broker, resource.port) == ("mq", 1883)
    assert resource.credentials is not None and resource.credentials.username == ""
    assert resource.tls is not None and resource.tls.enabled is False


def test_the_password_stays_out_of_the_repr() -> None:
    resource = parse_resource({"broker": "mq", "credentials": {"username": "u", "password": "pw1"}})

    assert "pw1" not in repr(resource)


@pytest.mark.parametrize(
    ("value", "field", "match"),
    [
        ({}, "resource.broker", "required"),
        ({"broker": "mq", "port": 0}, "resource.port", "greater than or equal to 1"),
        (
            {"broker": "mq", "tls": {"enabled": True, "pkcs12_client_certificate": "MII"}},
            "resource.tls",
            "PKCS#12",
        ),
        (
            {"broker": "mq", "tls": {"enabled": True, "client_certificate": "-----"}},
            "resource.tls",
            "go together",
        ),
    ],
)
def test_an_unusable_resource_names_the_field(value: Any, field: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match) as raised:
        parse_resource(value)

    assert raised.value.field == field

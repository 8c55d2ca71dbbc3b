"""MQTT messages, as paho hands them over, become events (reference 2.3)."""

from __future__ import annotations

from typing import Any

from paho.mqtt.client import MQTTMessage
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.listeners.mqtt import TopicAliases, to_event


def recorded(
    topic: bytes, payload: bytes, *, qos: int, mid: int, retain: bool = False, **props: Any
) -> MQTTMessage:
    """A PUBLISH as paho decodes it; `props` are v5 PUBLISH properties by their paho names."""
    message = MQTTMessage(mid=mid, topic=topic)
    message.payload = payload
    message.qos = qos
    message.retain = retain
    message.properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    for name, value in props.items():
        setattr(message.properties, name, value)
    return message


def test_a_v3_message_has_topic_retain_pkid_qos_and_no_v5_part() -> None:
    message = recorded(b"plant/1/temp", b"\x00\xff", qos=1, mid=4711, retain=True)

    event = to_event(message, v5=False)

    assert (event.kind, event.payload, event.raw) == ("mqtt", b"\x00\xff", b"\x00\xff")
    assert event.info == {
        "topic": "plant/1/temp",
        "retain": True,
        "pkid": 4711,
        "qos": 1,
        "v5": None,
    }


def test_no_message_has_a_dedup_key_since_packet_ids_are_reused() -> None:
    first = to_event(recorded(b"t", b"on", qos=1, mid=1), v5=False)
    later = to_event(recorded(b"t", b"on", qos=1, mid=1), v5=False)

    assert first.dedup_key is None
    assert later.dedup_key is None


def test_a_qos0_message_has_packet_id_zero() -> None:
    event = to_event(recorded(b"t", b"x", qos=0, mid=0), v5=True)

    assert (event.info["pkid"], event.info["qos"]) == (0, 0)


def test_v5_properties_are_listed_as_windmill_shows_them() -> None:
    message = recorded(
        b"orders",
        b"{}",
        qos=2,
        mid=9,
        PayloadFormatIndicator=1,
        ContentType="application/json",
        ResponseTopic="orders/reply",
        CorrelationData=b"\x01\x02",
        UserProperty=[("k", "1"), ("k", "2")],
        SubscriptionIdentifier=[7],
        MessageExpiryInterval=30,
    )

    event = to_event(message, v5=True)

    assert event.info["v5"] == {
        "payload_format_indicator": 1,
        "topic_alias": None,
        "response_topic": "orders/reply",
        "correlation_data": [1, 2],
        "user_properties": [["k", "1"], ["k", "2"]],
        "subscription_identifiers": [7],
        "content_type": "application/json",
    }


def test_a_v5_message_without_properties_has_a_null_v5_part() -> None:
    event = to_event(recorded(b"orders", b"{}", qos=1, mid=3), v5=True)

    assert event.info["v5"] is None


def test_a_topic_alias_is_resolved_on_later_messages_of_the_connection() -> None:
    aliases = TopicAliases()
    first = recorded(b"plant/1/temp", b"20", qos=1, mid=1, TopicAlias=3)
    later = recorded(b"", b"21", qos=1, mid=2, TopicAlias=3)
    unknown = recorded(b"", b"22", qos=1, mid=3, TopicAlias=4)

    topics = [aliases.topic_of(m) for m in (first, later, unknown)]
    event = to_event(later, v5=True, topic=topics[1])

    assert topics == ["plant/1/temp", "plant/1/temp", None]
    assert event.info["topic"] == "plant/1/temp"
    assert event.info["v5"]["topic_alias"] == 3

"""Job args from events: format detection and the arg shape of every listener kind."""

from dataclasses import dataclass
from typing import Any

import pytest

from gateway.triggers.args import (
    ArgsError,
    ArgsFormat,
    RunnableShape,
    build_args,
    detect_format,
)
from gateway.triggers.event import Event

KAFKA_INFO = {"brokers": ["b1:9092"], "topic": "orders", "group_id": "windmill_ws_u_admin_t"}
KAFKA_EVENT = Event(
    kind="kafka", payload=b'{"a":1}', info=KAFKA_INFO, dedup_key="orders/0/42", raw=b'{"a":1}'
)


def script(**param_types: str) -> RunnableShape:
    return RunnableShape(frozenset(param_types), param_types)


def preprocessed(*params: str, main: RunnableShape | None = None) -> RunnableShape:
    main = main or script()
    return RunnableShape(main.main_params, main.main_param_types, True, params)


# --- the worked examples (Kafka value {"a":1} on topic orders) ------------------------------------


def test_worked_example_main_payload_gets_base64() -> None:
    assert build_args(KAFKA_EVENT, script(payload="string")) == {"payload": "eyJhIjoxfQ=="}


def test_worked_example_main_msg_gets_text() -> None:
    assert build_args(KAFKA_EVENT, script(msg="string")) == {"msg": '{"a":1}'}


def test_worked_example_preprocessor_event_gets_the_event_object() -> None:
    assert build_args(KAFKA_EVENT, preprocessed("event")) == {
        "event": {
            "kind": "kafka",
            "payload": "eyJhIjoxfQ==",
            "brokers": ["b1:9092"],
            "topic": "orders",
            "group_id": "windmill_ws_u_admin_t",
        }
    }


def test_worked_example_legacy_preprocessor_gets_msg_and_wm_trigger() -> None:
    assert build_args(KAFKA_EVENT, preprocessed("msg", "wm_trigger")) == {
        "msg": '{"a":1}',
        "wm_trigger": {
            "kind": "kafka",
            "kafka": {
                "brokers": ["b1:9092"],
                "topic": "orders",
                "group_id": "windmill_ws_u_admin_t",
            },
        },
    }


# --- format detection -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (("event",), ArgsFormat.V2),
        ((), ArgsFormat.V2),
        (("event", "extra"), ArgsFormat.V2),
        (("wm_trigger",), ArgsFormat.V1),
        (("event", "wm_trigger"), ArgsFormat.V1),
        (("msg",), ArgsFormat.V1),
        (("payload", "topic"), ArgsFormat.V1),
    ],
)
def test_a_preprocessor_signature_decides_the_format(
    params: tuple[str, ...], expected: ArgsFormat
) -> None:
    for kind in ("kafka", "mqtt", "sqs", "postgres"):
        assert detect_format(kind, preprocessed(*params)) is expected


def test_a_preprocessor_overrides_what_main_looks_like() -> None:
    shape = preprocessed("event", main=script(msg="string"))

    assert detect_format("kafka", shape) is ArgsFormat.V2


@pytest.mark.parametrize(
    ("kind", "shape", "expected"),
    [
        ("mqtt", script(payload="array"), ArgsFormat.V1),
        ("mqtt", script(payload="string"), ArgsFormat.V2),
        ("mqtt", script(msg="string"), ArgsFormat.V2),
        ("kafka", script(msg="string"), ArgsFormat.V1),
        ("kafka", script(msg="object", payload="string"), ArgsFormat.V1),
        ("kafka", script(payload="string"), ArgsFormat.V2),
        ("kafka", script(payload="array"), ArgsFormat.V2),
        ("nats", script(msg="string"), ArgsFormat.V1),
        ("nats", script(), ArgsFormat.V2),
        ("sqs", script(msg="string"), ArgsFormat.V2),
        ("gcp", script(payload="array"), ArgsFormat.V2),
        ("websocket", script(msg="string"), ArgsFormat.V2),
        ("postgres", script(row="object"), ArgsFormat.V2),
        ("email", script(raw_email="string"), ArgsFormat.V2),
    ],
)
def test_without_a_preprocessor_main_decides_the_format(
    kind: str, shape: RunnableShape, expected: ArgsFormat
) -> None:
    assert detect_format(kind, shape) is expected


def test_shape_from_a_json_schema() -> None:
    shape = RunnableShape.from_schema(
        {
            "type": "object",
            "properties": {"payload": {"type": "array"}, "anything": {}},
            "required": ["payload"],
        },
        has_preprocessor=True,
        preprocessor_params=["event"],
    )

    assert shape == RunnableShape(
        frozenset({"payload", "anything"}), {"payload": "array"}, True, ("event",)
    )
    assert RunnableShape.from_schema(None) == RunnableShape()


# --- every kind, every format ---------------------------------------------------------------------


@dataclass(frozen=True)
class KindCase:
    kind: str
    payload: Any
    info: dict[str, Any]
    v1_main: RunnableShape  # a main that makes the kind use V1 (or V2 for kinds without V1)
    v1: dict[str, Any]
    v2: dict[str, Any]


ROW_CHANGE = {
    "transaction_type": "update",
    "schema_name": "public",
    "table_name": "orders",
    "old_row": None,
    "row": {"id": 7, "status": "paid"},
}
PARSED_EMAIL = {
    "headers": {"From": [{"address": "a@example.com", "name": "A"}]},
    "text_body": "hi",
    "html_body": "<p>hi</p>",
    "attachments": [],
}

CASES = [
    KindCase(
        "kafka",
        b"hello",
        {"brokers": ["b1:9092"], "topic": "t", "group_id": "g", "partition": 0, "offset": 42},
        script(msg="string"),
        {"msg": "hello"},
        {"payload": "aGVsbG8="},
    ),
    KindCase(
        "nats",
        b"hello",
        {"servers": ["nats://n1:4222"], "subject": "s.1", "length": 5},
        script(msg="string"),
        {"msg": "hello"},
        {"payload": "aGVsbG8="},
    ),
    KindCase(
        "mqtt",
        b"\x00\x01\xff",
        {"topic": "sensors/1", "retain": False, "pkid": 3, "qos": 1, "v5": None},
        script(payload="array"),
        {"payload": [0, 1, 255]},
        {"payload": "AAH/"},
    ),
    KindCase(
        "sqs",
        "body text",
        {"queue_url": "https://sqs.example/q", "message_id": "m1", "attributes": {}},
        script(msg="string"),
        {"msg": "body text"},
        {"msg": "body text"},
    ),
    KindCase(
        "gcp",
        "aGVsbG8=",
        {"message_id": "1", "subscription": "sub", "delivery_type": "pull"},
        script(payload="string"),
        {"payload": "aGVsbG8="},
        {"payload": "aGVsbG8="},
    ),
    KindCase(
        "websocket",
        '{"price": 3}',
        {"url": "wss://feed.example/ws"},
        script(msg="string"),
        {"msg": '{"price": 3}'},
        {"msg": '{"price": 3}'},
    ),
    KindCase("postgres", ROW_CHANGE, {}, script(row="object"), ROW_CHANGE, ROW_CHANGE),
    KindCase(
        "email",
        {"raw_email": "From: a@example.com\r\n\r\nhi", "parsed_email": PARSED_EMAIL},
        {},
        script(raw_email="string"),
        {"raw_email": "From: a@example.com\r\n\r\nhi", "parsed_email": PARSED_EMAIL},
        {"raw_email": "From: a@example.com\r\n\r\nhi", "parsed_email": PARSED_EMAIL},
    ),
]


def event_of(case: KindCase) -> Event:
    return Event(kind=case.kind, payload=case.payload, info=case.info, dedup_key=None, raw=b"")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.kind)
def test_v1_without_preprocessor_is_the_v1_payload(case: KindCase) -> None:
    assert build_args(event_of(case), case.v1_main) == case.v1


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.kind)
def test_v2_without_preprocessor_is_the_v2_payload(case: KindCase) -> None:
    assert build_args(event_of(case), script(other="string")) == case.v2


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.kind)
def test_v2_preprocessor_gets_payload_kind_and_info_in_one_event(case: KindCase) -> None:
    assert build_args(event_of(case), preprocessed("event")) == {
        "event": {**case.v2, "kind": case.kind, **case.info}
    }


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.kind)
def test_v1_preprocessor_gets_the_v1_payload_and_wm_trigger(case: KindCase) -> None:
    assert build_args(event_of(case), preprocessed("wm_trigger")) == {
        **case.v1,
        "wm_trigger": {"kind": case.kind, case.kind: case.info},
    }


# --- kind details ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["kafka", "nats"])
def test_invalid_utf8_becomes_the_literal_error_text_in_v1(kind: str) -> None:
    event = Event(kind=kind, payload=b"\xff\xfe", info={}, dedup_key=None, raw=b"\xff\xfe")

    assert build_args(event, script(msg="string")) == {"msg": "Error: invalid utf8 payload"}
    assert build_args(event, script()) == {"payload": "//4="}


def test_v2_base64_is_standard_with_padding() -> None:
    event = Event(kind="kafka", payload=b"\xfb\xff", info={}, dedup_key=None, raw=b"")

    assert build_args(event, script()) == {"payload": "+/8="}


def test_postgres_preprocessor_event_has_the_row_change_and_kind_only() -> None:
    event = Event(kind="postgres", payload=ROW_CHANGE, info={}, dedup_key=None, raw=b"")

    assert build_args(event, preprocessed("event")) == {"event": {**ROW_CHANGE, "kind": "postgres"}}


def test_postgres_args_keep_only_the_row_change_fields() -> None:
    event = Event(
        kind="postgres",
        payload={**ROW_CHANGE, "lsn": "0/16B3748"},
        info={},
        dedup_key=None,
        raw=b"",
    )

    assert build_args(event, script()) == ROW_CHANGE


def test_email_extra_args_are_passed_when_present() -> None:
    payload = {
        "raw_email": "raw",
        "parsed_email": PARSED_EMAIL,
        "email_extra_args": {"ticket": "42"},
    }
    event = Event(kind="email", payload=payload, info={}, dedup_key=None, raw=b"raw")

    assert build_args(event, script()) == payload


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        ("mqtt", "not bytes", "mqtt payload must be bytes, got str"),
        ("kafka", {"a": 1}, "kafka payload must be bytes, got dict"),
        ("nats", bytearray(b"x"), "nats payload must be bytes, got bytearray"),
        ("sqs", b"body", "sqs payload must be str, got bytes"),
        ("websocket", None, "websocket payload must be str, got NoneType"),
        ("gcp", b"aGVsbG8=", "gcp payload must be str, got bytes"),
        ("postgres", "row", "postgres payload must be an object, got str"),
        ("postgres", {"row": {}}, "postgres payload lacks transaction_type, schema_name"),
        ("email", {"raw_email": "x"}, "email payload lacks parsed_email"),
        ("http", b"", "no arg builder for trigger kind 'http'"),
    ],
)
def test_a_payload_of_the_wrong_type_is_an_args_error(
    kind: str, payload: Any, message: str
) -> None:
    event = Event(kind=kind, payload=payload, info={}, dedup_key=None, raw=b"")

    with pytest.raises(ArgsError, match=message):
        build_args(event, script())

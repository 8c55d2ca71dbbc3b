"""Body reading and parsing, and the args each runnable format gets."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.http_routes.routes.body import ParsedBody, parse_body, read_body
from gateway.http_routes.routes.errors import RequestRefused
from gateway.http_routes.routes.http_args import HttpRequestInfo, build_http_args
from gateway.triggers.args import RunnableShape

INFO = HttpRequestInfo(
    route="orders/:id",
    path="orders/7",
    method="post",
    params={"id": "7"},
    query={"q": "1"},
    headers={"x-a": "b"},
)
PLAIN = RunnableShape()
V2 = RunnableShape(has_preprocessor=True, preprocessor_params=("event",))
V1 = RunnableShape(has_preprocessor=True, preprocessor_params=("wm_trigger", "a"))


def _receiver(*messages: dict[str, Any]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


async def test_the_body_is_read_across_messages() -> None:
    receive = _receiver(
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"c", "more_body": False},
    )

    assert await read_body(receive, 3, None) == b"abc"


async def test_a_body_over_the_limit_is_413_whether_declared_or_sent() -> None:
    with pytest.raises(RequestRefused) as declared:
        await read_body(_receiver(), 3, "4")
    sent = _receiver({"type": "http.request", "body": b"abcd", "more_body": False})
    with pytest.raises(RequestRefused) as streamed:
        await read_body(sent, 3, None)

    assert declared.value.status == streamed.value.status == 413


@pytest.mark.parametrize(
    ("content_type", "body", "args", "raw"),
    [
        (None, b"", {}, None),
        ("application/json", b'{"a":1}', {"a": 1}, None),
        ("application/json; charset=utf-8", b"[1]", {"body": [1]}, None),
        ("application/x-www-form-urlencoded", b"a=1&b=&a=2", {"a": "2", "b": ""}, None),
        ("text/plain", b"hi", {}, "hi"),
        ("TEXT/XML", b"<a/>", {}, "<a/>"),
    ],
)
def test_bodies_by_content_type(
    content_type: str | None, body: bytes, args: dict[str, Any], raw: str | None
) -> None:
    assert parse_body(content_type, body, keep_raw=False) == ParsedBody(args, raw)


def test_keep_raw_keeps_the_text_beside_the_args() -> None:
    assert parse_body("application/json", b'{"a":1}', keep_raw=True) == ParsedBody(
        {"a": 1}, '{"a":1}'
    )


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/json", b"", 400),
        ("application/json", b"Infinity", 400),
        ("application/json", b"\xff", 400),
        ("image/png", b"x", 415),
        ("application/cloudevents-batch+json", b"[]", 400),
    ],
)
def test_bad_bodies_are_refused(content_type: str, body: bytes, status: int) -> None:
    with pytest.raises(RequestRefused) as refused:
        parse_body(content_type, body, keep_raw=False)

    assert refused.value.status == status


def test_without_a_preprocessor_the_body_is_the_args() -> None:
    body = ParsedBody({"a": 1}, '{"a":1}')

    assert build_http_args(body, INFO, PLAIN, wrap_body=False) == {"a": 1, "raw_string": '{"a":1}'}
    assert build_http_args(body, INFO, PLAIN, wrap_body=True) == {
        "body": {"a": 1},
        "raw_string": '{"a":1}',
    }


def test_a_v2_preprocessor_gets_the_request_as_an_event() -> None:
    args = build_http_args(ParsedBody({"a": 1}), INFO, V2, wrap_body=True)

    assert args == {
        "event": {
            "kind": "http",
            "route": "orders/:id",
            "path": "orders/7",
            "method": "post",
            "params": {"id": "7"},
            "query": {"q": "1"},
            "headers": {"x-a": "b"},
            "body": {"a": 1},
            "raw_string": None,
        }
    }


def test_a_v1_preprocessor_gets_the_args_and_wm_trigger() -> None:
    args = build_http_args(ParsedBody({"a": 1}), INFO, V1, wrap_body=False)

    assert args == {
        "a": 1,
        "wm_trigger": {
            "kind": "http",
            "http": {
                "route": "orders/:id",
                "path": "orders/7",
                "method": "post",
                "params": {"id": "7"},
                "query": {"q": "1"},
                "headers": {"x-a": "b"},
            },
        },
    }

"""Request bodies by content type, and the args jobs get with and without a preprocessor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from .conftest import Served


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    """SQLite only: parsing and args do not depend on the dialect."""
    return sqlite_database_url


async def _echo(served: Served, **request: Any) -> httpx.Response:
    """The response of a sync route whose job returns its args."""
    columns = request.pop("columns", {})
    await served.add_route("echo", **columns)
    return await served.client.post("/echo", **request)


async def _args(served: Served, **request: Any) -> Any:
    response = await _echo(served, **request)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_json_object_is_the_args(served: Served) -> None:
    assert await _args(served, json={"a": 1, "b": [2]}) == {"a": 1, "b": [2]}


@pytest.mark.parametrize(
    ("content", "args"),
    [
        (b"[1,2]", {"body": [1, 2]}),
        (b'"text"', {"body": "text"}),
        (b"null", {"body": None}),
        (b' {"a":1}', {"body": {"a": 1}}),
    ],
)
async def test_any_other_json_value_is_wrapped_as_body(
    served: Served, content: bytes, args: Any
) -> None:
    headers = {"content-type": "application/json"}
    assert await _args(served, content=content, headers=headers) == args


async def test_no_content_type_is_json_and_no_body_is_no_args(served: Served) -> None:
    await served.add_route("bare")

    assert (await served.client.post("/bare", content=b"")).json() == {}
    assert (await served.client.post("/bare", content=b'{"k":"v"}')).json() == {"k": "v"}


@pytest.mark.parametrize("content", [b"", b"{nope", b"NaN"])
async def test_invalid_json_is_400(served: Served, content: bytes) -> None:
    response = await _echo(served, content=content, headers={"content-type": "application/json"})

    assert response.status_code == 400
    assert response.json()["error"].startswith("invalid json")


async def test_a_form_gives_each_field_as_a_string(served: Served) -> None:
    assert await _args(served, data={"a": "1", "b": ""}) == {"a": "1", "b": ""}


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "text/xml"])
async def test_text_and_xml_come_as_raw_string(served: Served, content_type: str) -> None:
    headers = {"content-type": f"{content_type}; charset=utf-8"}
    args = await _args(served, content=b"<a>\xc3\xa9</a>", headers=headers)

    assert args == {"raw_string": "<a>\u00e9</a>"}


async def test_multipart_text_fields_are_args_and_files_are_refused(served: Served) -> None:
    assert await _args(served, data={"name": "ada"}, files={"x": (None, "1")}) == {
        "name": "ada",
        "x": "1",
    }
    response = await served.client.post("/echo", files={"doc": ("a.txt", b"hi", "text/plain")})
    assert response.status_code == 400
    assert "file uploads" in response.json()["error"]


async def test_an_unknown_content_type_is_415(served: Served) -> None:
    response = await _echo(
        served, content=b"\x00\x01", headers={"content-type": "application/octet-stream"}
    )

    assert response.status_code == 415
    assert response.json() == {"error": "unsupported content type 'application/octet-stream'"}


async def test_invalid_utf8_is_400(served: Served) -> None:
    response = await _echo(served, content=b"\xff", headers={"content-type": "text/plain"})

    assert response.status_code == 400


async def test_a_body_over_the_limit_is_413_declared_or_streamed(served: Served) -> None:
    await served.add_route("big")
    too_big = b"x" * (64 * 1024 + 1)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(too_big), 4096):
            yield too_big[start : start + 4096]

    declared = await served.client.post("/big", content=too_big)
    streamed = await served.client.post("/big", content=chunks())

    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json() == {
            "error": "the request body is larger than the limit of 65536 bytes"
        }


async def test_wrap_body_and_raw_string(served: Served) -> None:
    columns = {"wrap_body": True, "raw_string": True}

    args = await _args(served, content=b'{"a":1}', columns=columns)

    assert args == {"body": {"a": 1}, "raw_string": '{"a":1}'}


async def test_a_cloudevent_gives_its_data_and_its_envelope_as_metadata(served: Served) -> None:
    event = {"specversion": "1.0", "type": "order.created", "id": "e1", "data": {"n": 5}}
    headers = {"content-type": "application/cloudevents+json"}

    args = await _args(served, json=event, headers=headers)

    assert args == {
        "n": 5,
        "WEBHOOK__METADATA__": {"specversion": "1.0", "type": "order.created", "id": "e1"},
    }


async def test_a_cloudevents_batch_is_400(served: Served) -> None:
    headers = {"content-type": "application/cloudevents-batch+json"}

    response = await _echo(served, content=b"[]", headers=headers)

    assert response.status_code == 400


async def test_webhook_query_options_are_refused_on_routes(served: Served) -> None:
    response = await _echo(served, json={}, params={"wrap_body": "true"})

    assert response.status_code == 400
    assert "please set it in the trigger config" in response.json()["error"]


async def test_a_route_without_a_runnable_is_404(served: Served) -> None:
    await served.add_route("nothing", script="")

    response = await served.client.post("/nothing")

    assert response.status_code == 404
    assert response.json() == {"error": "Runnable path of HTTP route at path: nothing is empty"}


async def test_a_v2_preprocessor_gets_the_whole_request_as_its_event(served: Served) -> None:
    await served.add_route("orders/:id", script="event", raw_string=True)

    response = await served.client.post(
        "/orders/42?x=1&x=2&y=z",
        content=b'{"a":1}',
        headers={"content-type": "application/json", "X-Custom": "yes"},
    )

    seen = response.json()
    assert seen["kind"] == "http"
    assert (seen["route"], seen["path"], seen["method"]) == ("orders/:id", "orders/42", "post")
    assert seen["params"] == {"id": "42"}
    assert seen["query"] == {"x": "2", "y": "z"}
    assert seen["headers"]["x-custom"] == "yes"
    assert seen["body"] == {"a": 1}
    assert seen["raw_string"] == '{"a":1}'


async def test_a_v1_preprocessor_gets_the_body_args_and_wm_trigger(served: Served) -> None:
    await served.add_route("legacy/:id", script="legacy")

    response = await served.client.post("/legacy/7?q=1", json={"a": 1})

    seen = response.json()
    assert seen["body"] == {"a": 1}
    trigger = seen["wm_trigger"]
    assert trigger["kind"] == "http"
    assert trigger["http"]["params"] == {"id": "7"}
    assert trigger["http"]["query"] == {"q": "1"}
    assert trigger["http"]["route"] == "legacy/:id"

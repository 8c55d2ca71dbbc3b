"""WebSocket trigger URLs the network guard refuses are refused when written: 400 naming `url`."""

from __future__ import annotations

from typing import Any

import pytest

from ..support import WS
from .conftest import Api


def websocket_trigger(url: str) -> dict[str, Any]:
    return {"path": "f/t/feed", "script_path": "f/t/hello", "is_flow": False, "url": url}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ws://169.254.169.254/latest/meta-data", "is a link-local address"),
        ("wss://[fe80::1]/", "is a link-local address"),
        ("ws://metadata.google.internal/", "is a cloud metadata service"),
    ],
)
async def test_a_link_local_or_metadata_url_is_refused_when_written(
    served_api: Api, url: str, reason: str
) -> None:
    http = await served_api.http()

    answer = await http.post(f"/w/{WS}/websocket_triggers/create", json=websocket_trigger(url))

    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["field"] == "url"
    assert reason in error["reason"]


async def test_an_update_to_a_refused_url_is_refused_too(served_api: Api) -> None:
    http = await served_api.http()
    created = await http.post(
        f"/w/{WS}/websocket_triggers/create", json=websocket_trigger("wss://feed.example/ws")
    )
    assert created.status_code == 201

    answer = await http.post(
        f"/w/{WS}/websocket_triggers/update/f/t/feed",
        json=websocket_trigger("ws://169.254.169.254/"),
    )

    assert (answer.status_code, answer.json()["error"]["field"]) == (400, "url")


async def test_a_scheme_other_than_ws_is_refused(served_api: Api) -> None:
    http = await served_api.http()

    answer = await http.post(
        f"/w/{WS}/websocket_triggers/create", json=websocket_trigger("http://feed.example/ws")
    )

    assert (answer.status_code, answer.json()["error"]["field"]) == (400, "url")

"""Trigger input over its limits is refused when written: 400 naming the field and the reason."""

from __future__ import annotations

from gateway.triggers.filters import MAX_FILTER_ENTRIES

from ..support import WS
from .conftest import Api


async def test_too_many_filters_are_refused_with_the_field(served_api: Api) -> None:
    http = await served_api.http()
    body = {
        "path": "f/t/feed",
        "script_path": "f/t/hello",
        "is_flow": False,
        "url": "wss://feed.example/ws",
        "filters": [{"key": "k", "value": n} for n in range(MAX_FILTER_ENTRIES + 1)],
    }

    answer = await http.post(f"/w/{WS}/websocket_triggers/create", json=body)

    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "field": "filters",
        "reason": f"{MAX_FILTER_ENTRIES + 1} entries, over the limit of {MAX_FILTER_ENTRIES}",
    }

"""`http_triggers/route_exists`, `http_triggers/create_many`, `email_triggers/local_part_exists`."""

from __future__ import annotations

from ..support import WS
from .conftest import Api


def route(path: str, route_path: str, method: str = "post") -> dict[str, object]:
    return {
        "path": path,
        "script_path": "f/t/hello",
        "is_flow": False,
        "route_path": route_path,
        "http_method": method,
        "request_type": "async",
    }


async def test_create_many_is_all_or_nothing_and_route_exists_sees_the_routes(
    asgi_api: Api,
) -> None:
    http = await asgi_api.http()
    base = f"/w/{WS}/http_triggers"
    created = await http.post(
        f"{base}/create_many",
        json=[route("f/t/orders", "orders/:id"), route("f/t/items", "items", "get")],
    )
    assert created.status_code == 201, created.text
    clash = await http.post(
        f"{base}/create_many",
        json=[route("f/t/other", "other"), route("f/t/orders2", "orders/:order_id")],
    )
    assert clash.status_code == 409, clash.text
    assert (await http.get(f"{base}/exists/f/t/other")).json() is False
    twice = await http.post(
        f"{base}/create_many", json=[route("f/t/a", "same"), route("f/t/b", "same")]
    )
    assert twice.status_code == 400 and "twice" in twice.text

    async def exists(**question: object) -> bool:
        response = await http.post(f"{base}/route_exists", json=question)
        assert response.status_code == 200, response.text
        result: bool = response.json()
        return result

    assert await exists(route_path="orders/:other", http_method="post") is True
    assert await exists(route_path="orders/:x", http_method="get") is False
    assert await exists(route_path="orders/:x", http_method="post", trigger_path="f/t/orders") is (
        False
    )


async def test_local_part_exists(asgi_api: Api) -> None:
    http = await asgi_api.http()
    created = await http.post(
        f"/w/{WS}/email_triggers/create",
        json={"path": "f/t/inbox", "script_path": "f/t/hello", "is_flow": False,
              "local_part": "orders"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    url = f"/w/{WS}/email_triggers/local_part_exists"
    assert (await http.post(url, json={"local_part": "orders"})).json() is True
    assert (await http.post(url, json={"local_part": "billing"})).json() is False
    mine = {"local_part": "orders", "trigger_path": "f/t/inbox"}
    assert (await http.post(url, json=mine)).json() is False

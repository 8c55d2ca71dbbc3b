"""Which route answers a request, and how route changes reach the route table."""

from __future__ import annotations

from typing import Any

from gateway.http_routes.routes import RouteOptions
from gateway.runtime import Gateway
from gateway.settings import Settings
from gateway.store import open_store

from ..support import WS, eventually
from .conftest import Served, edit_route, served_routes


async def _seen(served: Served, method: str, url: str) -> dict[str, Any]:
    """The event a preprocessor saw for a request to a sync `event` route."""
    response = await served.client.request(method, url)
    assert response.status_code == 200, response.text
    seen: dict[str, Any] = response.json()
    return seen


def _answers(served: Served, method: str, url: str, status: int) -> Any:
    async def check() -> bool:
        return (await served.client.request(method, url)).status_code == status

    return check


async def test_parameters_and_the_catch_all_are_captured(served: Served) -> None:
    await served.add_route("shop/:shop/files/*rest", script="event", http_method="get")

    seen = await _seen(served, "GET", "/shop/acme/files/a/b/c.txt?x=1")

    assert seen["route"] == "shop/:shop/files/*rest"
    assert seen["path"] == "shop/acme/files/a/b/c.txt"
    assert seen["params"] == {"shop": "acme", "rest": "a/b/c.txt"}
    assert seen["method"] == "get"


async def test_static_segment_wins_over_parameter_which_wins_over_catch_all(served: Served) -> None:
    for route_path in ("items/:id", "items/*rest", "items/new"):
        await served.add_route(route_path, script="event", http_method="get")

    assert (await _seen(served, "GET", "/items/new"))["route"] == "items/new"
    assert (await _seen(served, "GET", "/items/7"))["params"] == {"id": "7"}
    assert (await _seen(served, "GET", "/items/7/parts"))["params"] == {"rest": "7/parts"}


async def test_trailing_slash_is_ignored_and_an_encoded_slash_stays_in_its_parameter(
    served: Served,
) -> None:
    await served.add_route("files/:name", script="event", http_method="get")

    assert (await _seen(served, "GET", "/files/report/"))["params"] == {"name": "report"}
    assert (await _seen(served, "GET", "/files/a%2Fb"))["params"] == {"name": "a/b"}


async def test_unknown_path_is_404_and_another_method_of_a_known_path_is_405(
    served: Served,
) -> None:
    await served.add_route("things", http_method="post")

    missing = await served.client.get("/nothing/here")
    wrong_method = await served.client.get("/things")

    assert missing.status_code == 404
    assert missing.json() == {"error": "no HTTP route answers GET /api/r/nothing/here"}
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"


async def test_head_and_options_answer_an_empty_200_and_other_methods_405(served: Served) -> None:
    head = await served.client.head("/anything")
    options = await served.client.options("/anything")
    trace = await served.client.request("TRACE", "/anything")

    assert (head.status_code, head.content) == (200, b"")
    assert (options.status_code, options.content) == (200, b"")
    assert options.headers["access-control-allow-origin"] == "*"
    assert trace.status_code == 405


async def test_workspaced_route_answers_under_its_workspace_only(served: Served) -> None:
    await served.add_route("hook", request_type="async", workspaced_route=True)

    assert (await served.client.post(f"/{WS}/hook")).status_code == 201
    assert (await served.client.post("/hook")).status_code == 404


async def test_disabled_route_is_not_routed(served: Served) -> None:
    await served.add_route("off", request_type="async", mode="disabled")

    assert (await served.client.post("/off")).status_code == 404


async def test_route_created_after_the_table_was_built_is_served(served: Served) -> None:
    assert (await served.client.post("/later")).status_code == 404

    await served.add_route("later", request_type="async")

    assert (await served.client.post("/later")).status_code == 201


async def test_an_edit_with_a_notification_reaches_the_table(served: Served) -> None:
    # The version check runs once an hour here: only the notification can bring the edit.
    path = await served.add_route("edited", request_type="async")
    assert (await served.client.post("/edited")).status_code == 201

    await edit_route(served.store, path, mode="disabled")

    await eventually(_answers(served, "POST", "/edited", 404))


async def test_an_edit_without_a_notification_is_found_by_the_version_check(
    gateway: Gateway,
) -> None:
    async with served_routes(gateway, RouteOptions(version_check_interval_s=0.2)) as served:
        path = await served.add_route("quiet", request_type="async")
        assert (await served.client.post("/quiet")).status_code == 201

        await edit_route(served.store, path, notify=False, request_type="sync")

        await eventually(_answers(served, "POST", "/quiet", 200))


async def test_a_change_made_by_another_instance_is_served(
    gateway: Gateway, settings: Settings
) -> None:
    # PostgreSQL notifies every instance; SQLite instances share no notifications, so there the
    # version check finds the change.
    interval = 3600.0 if gateway.store.dialect == "postgresql" else 0.2
    async with served_routes(gateway, RouteOptions(version_check_interval_s=interval)) as served:
        path = await served.add_route("shared", request_type="async")
        assert (await served.client.post("/shared")).status_code == 201

        other = await open_store(settings.database_url)
        try:
            await edit_route(other, path, mode="disabled")
        finally:
            await other.close()

        await eventually(_answers(served, "POST", "/shared", 404))

"""CORS per route over a real socket: preflights answered against the route's origins, the
origin echoed on answers, and every origin when none are configured."""

from __future__ import annotations

import httpx

from gateway.http_routes.api.tokens import issue_token
from gateway.runtime import Gateway

from ..support import OWNER, WS
from .conftest import Served, edit_route

APP = "https://app.example.com"
OTHER = "https://evil.example.net"


def _preflight(origin: str, method: str = "POST", headers: str | None = None) -> dict[str, str]:
    sent = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        sent["Access-Control-Request-Headers"] = headers
    return sent


async def test_a_preflight_from_a_listed_origin_is_allowed_with_the_origin_echoed(
    served: Served,
) -> None:
    await served.add_route("orders/:id", allowed_origins=[APP])

    allowed = await served.client.options("/orders/7", headers=_preflight(APP, headers="x-api-key"))

    assert (allowed.status_code, allowed.content) == (200, b"")
    assert allowed.headers["access-control-allow-origin"] == APP
    assert allowed.headers["access-control-allow-headers"] == "x-api-key"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert allowed.headers["vary"] == "Origin"


async def test_a_preflight_from_another_origin_is_refused_without_cors_headers(
    served: Served,
) -> None:
    await served.add_route("orders", allowed_origins=[APP])

    refused = await served.client.options("/orders", headers=_preflight(OTHER))

    assert refused.status_code == 403
    assert refused.json() == {"error": f"origin {OTHER} is not allowed by this route's CORS"}
    assert "access-control-allow-origin" not in refused.headers


async def test_answers_echo_a_listed_origin_and_omit_the_header_for_others(
    served: Served,
) -> None:
    await served.add_route("echo", allowed_origins=[APP, "http://localhost:3000"])

    listed = await served.client.post("/echo", json={"a": 1}, headers={"Origin": APP})
    unlisted = await served.client.post("/echo", json={"a": 1}, headers={"Origin": OTHER})

    assert listed.json() == unlisted.json() == {"a": 1}
    assert listed.headers["access-control-allow-origin"] == APP
    assert "access-control-allow-origin" not in unlisted.headers
    assert listed.headers["vary"] == unlisted.headers["vary"] == "Origin"


async def test_no_origins_or_a_star_answer_every_origin(served: Served) -> None:
    await served.add_route("open")
    await served.add_route("star", allowed_origins=["*"])

    for url in ("/open", "/star"):
        preflight = await served.client.options(url, headers=_preflight(OTHER))
        answer = await served.client.post(url, json={}, headers={"Origin": OTHER})

        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert answer.headers["access-control-allow-origin"] == "*"
        assert "vary" not in answer.headers


async def test_a_preflight_for_a_missing_route_or_method_says_so(served: Served) -> None:
    await served.add_route("only-post", allowed_origins=[APP])

    missing = await served.client.options("/nowhere", headers=_preflight(APP))
    wrong = await served.client.options("/only-post", headers=_preflight(APP, method="DELETE"))

    assert missing.status_code == 404
    assert missing.json() == {"error": "no HTTP route answers POST /api/r/nowhere"}
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"


async def test_a_plain_options_request_is_an_empty_200(served: Served) -> None:
    await served.add_route("plain", allowed_origins=[APP])

    answer = await served.client.options("/plain")

    assert (answer.status_code, answer.content) == (200, b"")


async def test_changed_origins_are_live_at_once(served: Served) -> None:
    path = await served.add_route("moving", allowed_origins=[APP])
    before = await served.client.options("/moving", headers=_preflight(OTHER))

    await edit_route(served.store, path, allowed_origins=[APP, OTHER])
    after = await served.client.options("/moving", headers=_preflight(OTHER))

    assert (before.status_code, after.status_code) == (403, 200)
    assert after.headers["access-control-allow-origin"] == OTHER


async def test_a_static_website_answers_every_origin(served: Served) -> None:
    await served.add_route(
        "site",
        script="",
        http_method="get",
        is_static_website=True,
        static_asset_config={"directory": "site"},
        allowed_origins=[APP],
    )

    preflight = await served.client.options("/site", headers=_preflight(OTHER, method="GET"))

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"


async def test_origins_are_matched_case_insensitively(served: Served) -> None:
    await served.add_route("cased", allowed_origins=[APP])

    answer: httpx.Response = await served.client.options(
        "/cased", headers=_preflight("https://App.Example.com")
    )

    assert answer.headers["access-control-allow-origin"] == "https://App.Example.com"


async def test_origins_written_through_the_api_are_checked_normalized_and_served(
    gateway: Gateway, served: Served
) -> None:
    async with served.store.transaction() as tx:
        token = await issue_token(tx, OWNER, WS, label="test")
    body = {
        "path": "f/t/cors_route",
        "script_path": "f/t/echo",
        "route_path": "api-cors",
        "http_method": "post",
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app),
        base_url=f"http://gateway.test/api/w/{WS}/http_triggers",
        headers={"Authorization": f"Bearer {token}"},
    ) as api:
        invalid = await api.post("/create", json={**body, "allowed_origins": ["app.example.com"]})
        created = await api.post("/create", json={**body, "allowed_origins": [f"{APP}:443/"]})
        stored = (await api.get("/get/f/t/cors_route")).json()

    preflight = await served.client.options("/api-cors", headers=_preflight(APP))

    assert invalid.status_code == 400
    assert invalid.json()["error"]["field"] == "allowed_origins"
    assert created.status_code == 201, created.text
    assert stored["allowed_origins"] == [APP]
    assert preflight.headers["access-control-allow-origin"] == APP

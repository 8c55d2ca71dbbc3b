"""`NulInUrlGuard`: a URL holding a NUL is a 400 in the format of the part of the app asked."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from gateway.http_routes.url_guard import REASON, NulInUrlGuard


async def _reached(request: Request) -> PlainTextResponse:
    return PlainTextResponse("reached")


APP = Starlette(
    routes=[Route("/{rest:path}", _reached, methods=["GET", "POST"])],
    middleware=[Middleware(NulInUrlGuard)],
)


async def _get(url: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=APP)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        return await client.get(url)


async def test_a_nul_in_an_api_path_is_a_400_naming_the_url() -> None:
    response = await _get("/api/w/test/variables/delete/u/alice/a%00b")

    assert response.status_code == 400
    assert response.json() == {
        "error": {"field": "url", "reason": REASON},
        "message": f"url: {REASON}",
    }


async def test_a_nul_in_a_user_route_query_is_a_400_in_the_routes_format() -> None:
    response = await _get("/api/r/orders?id=%00")

    assert (response.status_code, response.json()) == (400, {"error": REASON})


async def test_other_urls_pass_unchanged() -> None:
    response = await _get("/api/r/orders/%2500?q=%25%30%30&x=0")

    assert (response.status_code, response.text) == (200, "reached")

"""Rate limits over real HTTP: 429 with Retry-After per route and per API token, counted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.http_routes.api.tokens import issue_token
from gateway.runtime import Gateway
from gateway.settings import Settings

from ..support import OWNER, WS, add_scripts
from .conftest import SCRIPTS, add_route


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    """Limits are kept in memory: one dialect is enough."""
    return sqlite_database_url


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """A gateway on a real socket, limiting routes and tokens to a burst of 2, then 1 per 100 s."""
    limited = Settings.load(
        environ={},
        **{
            **settings.model_dump(),
            "http_route_rate_limit_per_s": 0.01,
            "http_route_rate_limit_burst": 2,
            "api_token_rate_limit_per_s": 0.01,
            "api_token_rate_limit_burst": 2,
        },
    )
    async with Gateway.running(limited, run_listeners=False) as running:
        await add_scripts(running.store, **SCRIPTS)
        yield running


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}") as http:
        yield http


async def test_a_route_over_its_rate_gets_429_with_retry_after(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    await add_route(gateway.store, "limited")
    await add_route(gateway.store, "other")

    statuses = [(await client.post("/api/r/limited", json={})).status_code for _ in range(2)]
    refused = await client.post("/api/r/limited", json={})
    other = await client.post("/api/r/other", json={})

    assert statuses == [200, 200]
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 100
    assert refused.json() == {"error": "route limited is over its rate limit"}
    assert other.status_code == 200
    metrics = (await client.get("/metrics")).text
    assert 'gateway_requests_rate_limited_total{scope="route"} 1.0' in metrics


async def test_a_token_over_its_rate_gets_429_and_other_tokens_do_not(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    async with gateway.store.transaction() as tx:
        busy = await issue_token(tx, OWNER, WS, label="busy")
        calm = await issue_token(tx, OWNER, WS, label="calm")
    url = f"/api/w/{WS}/scripts/list"

    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    statuses = [(await client.get(url, headers=auth(busy))).status_code for _ in range(2)]
    refused = await client.get(url, headers=auth(busy))
    calm_answer = await client.get(url, headers=auth(calm))

    assert statuses == [200, 200]
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 100
    assert calm_answer.status_code == 200
    metrics = (await client.get("/metrics")).text
    assert 'gateway_requests_rate_limited_total{scope="token"} 1.0' in metrics

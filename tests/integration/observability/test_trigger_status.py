"""`GET /api/w/{ws}/triggers/status` on both dialects: every kind, its holder, jobs, quarantine,
source lag, and only what the caller may read."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from gateway.executor.worker import Executor
from gateway.http_routes.api.tokens import issue_token
from gateway.listeners.sql_lease_store import SqlLeaseStore
from gateway.runtime import Gateway
from gateway.triggers.quarantine import quarantine_event

from ..support import OWNER, WS, completed, job_of, submit
from ..triggers.support import age_leases, claim, frame
from .support import put_resource, put_trigger, run_command, watched_lines

pytestmark = pytest.mark.integration
KAFKA = {"kafka_resource_path": "u/alice/kafka", "topics": ["orders"], "group_id": "g"}


async def statuses(api: httpx.AsyncClient, query: str = "lag=false") -> dict[str, dict[str, Any]]:
    """The status answer, by trigger path."""
    response = await api.get(f"/api/w/{WS}/triggers/status?{query}")
    assert response.status_code == 200, response.text
    return {status["path"]: status for status in response.json()}


async def test_every_kind_shows_its_state_holder_and_activity(
    gateway: Gateway, api: httpx.AsyncClient
) -> None:
    store = gateway.store
    feed = await put_trigger(store, "websocket", "feed", url="ws://127.0.0.1:9/feed")
    lease = await claim(store, feed, "gw-a")
    await SqlLeaseStore(store).ping(lease, None)
    orders = await put_trigger(store, "kafka", "orders", **KAFKA)
    await claim(store, orders, "gw-gone")
    await age_leases(store, "kafka", 60)
    old = await put_trigger(store, "websocket", "old", mode="disabled", url="ws://127.0.0.1:9/x")
    hook = {"path": "u/alice/hook", "script_path": "f/t/echo", "is_flow": False}
    created = await api.post(
        f"/api/w/{WS}/http_triggers/create",
        json={**hook, "route_path": "hook", "http_method": "post"},
    )
    assert created.status_code == 201, created.text

    ok, failing = await submit(
        store,
        job_of("echo", trigger_kind="websocket", trigger=feed.path, args={"msg": "a"}),
        job_of("boom", trigger_kind="websocket", trigger=feed.path),
    )
    executor = Executor(store, gateway.settings)
    await executor.start()
    try:
        assert (await completed(store, ok))["success"] is True
        assert (await completed(store, failing))["success"] is False
    finally:
        await executor.stop(grace_s=1.0)
    async with store.transaction() as tx:
        await quarantine_event(
            tx, feed, frame("not for us", "frame-9"), "script f/t/gone not found"
        )

    found = await statuses(api)

    assert set(found) == {feed.path, orders.path, old.path, "u/alice/hook"}
    assert found[feed.path] | {"last_ping_age_s": 0, "last_event_age_s": 0} == {
        "kind": "websocket",
        "path": feed.path,
        "mode": "enabled",
        "state": "healthy",
        "server_id": "gw-a",
        "last_ping_age_s": 0,
        "last_event_age_s": 0,
        "events_last_minute": 2,
        "failed_last_hour": 1,
        "quarantined": 1,
        "error": None,
        "lag": None,
    }
    assert found[feed.path]["last_event_age_s"] >= 0
    assert found[orders.path]["state"] == "unheld"
    assert found[orders.path]["server_id"] == "gw-gone"
    assert found[orders.path]["last_ping_age_s"] >= 60
    assert found[old.path]["state"] == "disabled"
    assert found["u/alice/hook"]["kind"] == "http"
    assert found["u/alice/hook"]["state"] == "healthy"
    assert found["u/alice/hook"]["server_id"] is None
    assert found["u/alice/hook"]["last_event_age_s"] is None

    table = await run_command(gateway.settings, "triggers", "status", "--no-lag", "-w", WS)
    header, *rows = table.splitlines()
    assert header.split()[:4] == ["KIND", "PATH", "MODE", "STATE"]
    (feed_row,) = [row.split() for row in rows if feed.path in row]
    assert feed_row[:5] == ["websocket", feed.path, "enabled", "healthy", "gw-a"]
    watched = await watched_lines(
        gateway.settings, 2, "triggers", "status", "--watch", "--json", "--no-lag",
        "--interval", "0.1", "--kind", "kafka", "-w", WS,
    )  # fmt: skip
    assert [[status["state"] for status in json.loads(line)] for line in watched] == [
        ["unheld"],
        ["unheld"],
    ]


async def test_a_source_that_cannot_be_reached_shows_an_unknown_lag(
    gateway: Gateway, api: httpx.AsyncClient
) -> None:
    # Nothing listens on the discard port: the broker refuses the lag read.
    await put_resource(gateway.store, "u/alice/kafka", "kafka", {"brokers": ["127.0.0.1:9"]})
    orders = await put_trigger(gateway.store, "kafka", "orders", **KAFKA)
    feed = await put_trigger(gateway.store, "websocket", "feed", url="ws://127.0.0.1:9/feed")

    found = await statuses(api, "")

    lag = found[orders.path]["lag"]
    assert lag["value"] == "unknown"
    assert lag["unit"] == "messages"
    assert lag["error"]
    assert found[feed.path]["lag"] is None


async def test_the_caller_sees_the_kinds_its_token_may_read_and_can_keep_one(
    gateway: Gateway, api: httpx.AsyncClient
) -> None:
    store = gateway.store
    feed = await put_trigger(store, "websocket", "feed", url="ws://127.0.0.1:9/feed")
    orders = await put_trigger(store, "kafka", "orders", **KAFKA)
    async with store.transaction() as tx:
        scoped = await issue_token(tx, OWNER, WS, label="ws", scopes=["websocket_triggers:read"])

    assert set(await statuses(api, "lag=false&kind=kafka")) == {orders.path}
    only_feed = await api.get(
        f"/api/w/{WS}/triggers/status?lag=false", headers={"Authorization": f"Bearer {scoped}"}
    )
    assert [status["path"] for status in only_feed.json()] == [feed.path]
    unknown = await api.get(f"/api/w/{WS}/triggers/status?kind=telegram")
    assert unknown.status_code == 400
    assert "kind" in unknown.text
    assert (await api.get("/api/w/nope/triggers/status")).status_code == 404

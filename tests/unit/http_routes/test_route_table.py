"""The route table: what it serves, and when it is rebuilt (a store twin, a hand-moved clock)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from gateway.http_routes.routes.table import HttpRoute, LiveRouteTable, RouteTable
from gateway.store.notify import ROUTES_CHANGED, Broadcaster


def _row(route_path: str, method: str = "post", **columns: Any) -> dict[str, Any]:
    return {
        "workspace_id": "ws",
        "path": f"f/routes/{route_path.replace('/', '_').replace(':', '')}_{method}",
        "script_path": "f/t/echo",
        "is_flow": False,
        "edited_by": "alice",
        "email": "alice@example.com",
        "permissioned_as": "u/alice",
        "retry": None,
        "error_handler_path": None,
        "error_handler_args": None,
        "mode": "enabled",
        "route_path": route_path,
        "http_method": method,
        "workspaced_route": False,
        "authentication_method": "none",
        "request_type": "sync",
        "allowed_origins": None,
        **columns,
    }


class RoutesStoreTwin:
    """Answers the two route queries from a list of rows; counts what was read."""

    dialect = "twin"

    def __init__(self) -> None:
        self.notifications = Broadcaster()
        self.rows: list[dict[str, Any]] = []
        self.edits = 0
        self.version_reads = 0
        self.table_reads = 0
        self.version_gate: asyncio.Event | None = None
        self.version_read_started = asyncio.Event()
        self.table_gate: asyncio.Event | None = None
        self.table_read_started = asyncio.Event()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[RoutesStoreTwin]:
        yield self

    async def fetch_one(self, query: str, **params: Any) -> dict[str, Any]:
        assert query == "http_routes_version"
        self.version_reads += 1
        self.version_read_started.set()
        if self.version_gate is not None:
            await self.version_gate.wait()
        return {"routes": len(self.rows), "last_edit": None, "edits": self.edits}

    async def fetch_all(self, query: str, **params: Any) -> list[dict[str, Any]]:
        if query == "list_http_triggers":
            return [row for row in self.rows if row["workspace_id"] == params["workspace_id"]]
        assert query == "http_routes_list_served"
        self.table_reads += 1
        rows = list(self.rows)
        self.table_read_started.set()
        if self.table_gate is not None:
            await self.table_gate.wait()
        return rows

    def edit(self, *rows: dict[str, Any]) -> None:
        """Replace the rows, moving the fingerprint."""
        self.rows = list(rows)
        self.edits += 1


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_duplicate_and_invalid_routes_are_skipped_and_workspaced_ones_prefixed() -> None:
    first = _row("orders/:id", path="f/routes/first")
    table = RouteTable(
        HttpRoute.from_row(row)
        for row in (
            first,
            _row("orders/:order", path="f/routes/second"),
            _row("bad//route"),
            _row("hook", "get", workspaced_route=True),
        )
    )

    found = table.match("post", ["orders", "1"])
    assert found is not None and found.route.row is first
    assert table.match("get", ["ws", "hook"]) is not None
    assert table.match("get", ["hook"]) is None
    assert table.methods_matching(["orders", "1"]) == ["post"]
    assert table.size == 2


def test_a_path_without_parameters_wins_over_a_parameter_on_its_method_only() -> None:
    param = _row("orders/:id", path="f/routes/param")
    fixed = _row("orders/new", path="f/routes/fixed")
    table = RouteTable(
        HttpRoute.from_row(row) for row in (param, fixed, _row("orders/new", path="f/routes/taken"))
    )

    found = table.match("post", ["orders", "new"])
    assert found is not None and found.route.row is fixed and dict(found.params) == {}
    other = table.match("post", ["orders", "7"])
    assert other is not None and other.route.row is param and dict(other.params) == {"id": "7"}
    assert table.match("get", ["orders", "new"]) is None
    assert table.size == 2


def test_a_row_with_an_invalid_retry_is_served_with_the_reason() -> None:
    route = HttpRoute.from_row(_row("r", retry={"constant": {"attempts": -1}}))

    assert route.target is None
    assert route.target_error is not None and "retry policy is invalid" in route.target_error


async def test_the_table_is_reused_until_a_change_is_notified() -> None:
    store = RoutesStoreTwin()
    store.rows = [_row("a")]
    live = LiveRouteTable(store, check_interval_s=3600)  # type: ignore[arg-type]

    first = await live.current()
    assert await live.current() is first
    store.edit(_row("a"), _row("b"))
    store.notifications.publish(ROUTES_CHANGED)
    rebuilt = await live.current()

    assert rebuilt is not first
    assert rebuilt.match("post", ["b"]) is not None
    assert store.table_reads == 2
    await live.close()


async def test_a_change_notified_during_a_rebuild_is_not_lost() -> None:
    store = RoutesStoreTwin()
    live = LiveRouteTable(store, check_interval_s=3600)  # type: ignore[arg-type]
    await live.current()
    store.table_gate = asyncio.Event()
    store.table_read_started.clear()
    store.notifications.publish(ROUTES_CHANGED)

    # Request A rebuilds and has read the rows; the change lands before its rebuild ends.
    request_a = asyncio.create_task(live.current())
    await store.table_read_started.wait()
    store.edit(_row("new"))
    store.notifications.publish(ROUTES_CHANGED)
    request_b = asyncio.create_task(live.current())
    await asyncio.sleep(0)
    store.table_gate.set()

    assert (await request_a).match("post", ["new"]) is None
    assert (await request_b).match("post", ["new"]) is not None
    await live.close()


async def test_the_fingerprint_is_read_only_once_the_interval_passed() -> None:
    store, clock = RoutesStoreTwin(), Clock()
    live = LiveRouteTable(store, check_interval_s=3, clock=clock)  # type: ignore[arg-type]
    first = await live.current()
    reads = store.version_reads

    clock.now = 2.9
    assert await live.current() is first
    assert store.version_reads == reads
    clock.now = 3.0
    assert await live.current() is first
    assert store.version_reads == reads + 1
    store.edit(_row("late"))
    clock.now = 6.0
    assert (await live.current()).match("post", ["late"]) is not None
    await live.close()


async def test_misses_queued_behind_a_running_check_share_the_next_one() -> None:
    store = RoutesStoreTwin()
    live = LiveRouteTable(store, check_interval_s=3600)  # type: ignore[arg-type]
    seen = await live.current()
    reads = store.version_reads
    store.version_gate = asyncio.Event()
    store.version_read_started.clear()

    # Miss A starts its check and waits for the database inside it.
    miss_a = asyncio.create_task(live.confirm_miss())
    await store.version_read_started.wait()
    # B and C missed after A's check began, which may predate what they missed: they queue.
    miss_b = asyncio.create_task(live.confirm_miss())
    miss_c = asyncio.create_task(live.confirm_miss())
    await asyncio.sleep(0)
    # A's check answers; the next check starts after B's and C's lookups and answers both.
    store.version_gate.set()
    assert [await miss_a, await miss_b, await miss_c] == [seen, seen, seen]
    assert store.version_reads == reads + 2
    await live.close()


async def test_a_miss_after_a_change_rebuilds_at_once() -> None:
    store = RoutesStoreTwin()
    live = LiveRouteTable(store, check_interval_s=3600)  # type: ignore[arg-type]
    await live.current()

    store.edit(_row("new"))
    table = await live.confirm_miss()

    assert table.match("post", ["new"]) is not None
    await live.close()

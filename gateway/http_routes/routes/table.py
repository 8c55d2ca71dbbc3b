"""The route table of one instance, and how it stays current.

`RouteTable` is an immutable snapshot of every served route (mode `enabled` or `suspended`), one
`Router` per method. `LiveRouteTable` hands out the current snapshot and rebuilds it lazily, on the
request that finds it stale:

* a commit that changes routes calls `routes_changed(tx)`, which notifies `ROUTES_CHANGED` on
  commit; every instance (LISTEN/NOTIFY on PostgreSQL) marks its table stale, so the next request
  rebuilds it;
* a fallback for a lost notification or a writer that did not notify (another process on the
  same SQLite file): at most every `check_interval_s`, a request first reads a cheap fingerprint
  of `http_trigger` (count, latest and summed `edited_at`) and rebuilds when it moved;
* a request that matches no route checks the fingerprint before answering 404, so a route
  created just now on this instance is found even before its notification has come back from
  PostgreSQL (misses queued behind a running check share the next one).

No background task: the notification subscription is held open from the first request until
`close()`, and drained by requests.

A static website's route also answers every path below it (`<route>/*wm_subpath`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from gateway.http_routes.routes.cors import ANY, CorsPolicy
from gateway.http_routes.routes.router import Router, RouteSyntaxError, Segment, parse_route
from gateway.jobs.retry import RetryPolicyError
from gateway.listeners.lease import TriggerRef
from gateway.store import Row, Store, Transaction
from gateway.store.notify import ROUTES_CHANGED
from gateway.triggers.runnables import TriggerTarget

logger = logging.getLogger(__name__)

METHODS: Final = ("get", "post", "put", "delete", "patch")
WEBSITE_SUBPATH: Final = "wm_subpath"
"""The catch-all parameter of the paths below a static website's route."""


async def routes_changed(tx: Transaction) -> None:
    """Tell every instance, once `tx` commits, that HTTP routes were created, edited or deleted."""
    tx.notify(ROUTES_CHANGED)


@dataclass(frozen=True, slots=True)
class HttpRoute:
    """One served route: its trigger row and what the row says about the jobs it creates.

    `target` is None when the row's stored retry policy is invalid; `target_error` says why.
    What the row says about serving a request is read once, here, as every request asks it.
    """

    trigger: TriggerRef
    row: Mapping[str, Any]
    target: TriggerTarget | None
    target_error: str | None
    cors: CorsPolicy
    route_path: str = field(init=False)
    """The route template (`orders/:id`)."""
    authentication_method: str = field(init=False)
    """`none`, `windmill`, `api_key`, `basic_http`, `signature` or `custom_script`."""
    request_type: str = field(init=False)
    """`sync`, `async` or `sync_sse`."""
    suspended: bool = field(init=False)
    """Jobs of a suspended route are parked until the trigger is resumed."""
    website: bool = field(init=False)
    """The route serves a static website (`<route>` and every path below it)."""
    static: bool = field(init=False)
    """The route serves files instead of creating jobs."""

    def __post_init__(self) -> None:
        row = self.row
        website = bool(row.get("is_static_website"))
        derived = {
            "route_path": str(row["route_path"]),
            "authentication_method": str(row["authentication_method"]),
            "request_type": str(row["request_type"]),
            "suspended": row["mode"] == "suspended",
            "website": website,
            "static": website or bool(row.get("static_asset_config")),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)  # a frozen dataclass's derived fields

    @classmethod
    def from_row(cls, row: Row) -> HttpRoute:
        """Read an `http_trigger` row."""
        trigger = TriggerRef("http", row["workspace_id"], row["path"])
        # A static website answers every origin, whatever its route says.
        cors = ANY if row.get("is_static_website") else CorsPolicy.of(row.get("allowed_origins"))
        try:
            return cls(trigger, row, TriggerTarget.from_row(trigger, row), None, cors)
        except RetryPolicyError as exc:
            return cls(trigger, row, None, f"the trigger's retry policy is invalid: {exc}", cors)

    @property
    def subpath_param(self) -> str:
        """The parameter holding the path below a website's route: its own catch-all, if its
        route ends with one, else `wm_subpath`."""
        last = self.route_path.rstrip("/").rsplit("/", 1)[-1]
        return last[1:] if last.startswith("*") else WEBSITE_SUBPATH


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """The route a request reached, and the values of its parameters."""

    route: HttpRoute
    params: Mapping[str, str]


_NO_PARAMS: Final[Mapping[str, str]] = MappingProxyType({})


class RouteTable:
    """An immutable snapshot of the served routes, one router per method.

    A path without parameters is also kept whole, with its match: a request for it (the usual
    webhook) is one dict lookup, and it is the match the router would give, as a static segment
    wins at every depth.
    """

    def __init__(self, routes: Iterable[HttpRoute]) -> None:
        self._routers: dict[str, Router[HttpRoute]] = {method: Router() for method in METHODS}
        self._fixed: dict[tuple[str, tuple[str, ...]], RouteMatch] = {}
        self.size = 0
        for route in routes:
            self._add(route)

    def _add(self, route: HttpRoute) -> None:
        try:
            segments = parse_route(route.route_path)
        except RouteSyntaxError as exc:
            logger.warning(
                "http route %s skipped: %s", route.trigger, exc, extra={"action": "route_skipped"}
            )
            return
        if route.row["workspaced_route"]:
            segments = (Segment("static", route.trigger.workspace_id), *segments)
        method = str(route.row["http_method"]).lower()
        router = self._routers.get(method)
        if router is None or not router.add(segments, route):
            _taken(route, route.route_path)
            return
        self.size += 1
        if all(segment.kind == "static" for segment in segments):
            path = tuple(segment.text for segment in segments)
            self._fixed[(method, path)] = RouteMatch(route, _NO_PARAMS)
        if route.website and (not segments or segments[-1].kind != "rest"):
            below = (*segments, Segment("rest", WEBSITE_SUBPATH))
            if not router.add(below, route):
                _taken(route, f"{route.route_path}/*{WEBSITE_SUBPATH}")

    def match(self, method: str, path: Sequence[str]) -> RouteMatch | None:
        """The route answering `method` (lowercase) on the decoded path segments, or None."""
        fixed = self._fixed.get((method, tuple(path)))
        if fixed is not None:
            return fixed
        router = self._routers.get(method)
        found = router.match(path) if router is not None else None
        return RouteMatch(found.value, found.params) if found is not None else None

    def methods_matching(self, path: Sequence[str]) -> list[str]:
        """The methods some route answers on `path` (for a 405's `Allow`)."""
        return [method for method, router in self._routers.items() if router.match(path)]


def _taken(route: HttpRoute, route_path: str) -> None:
    logger.warning(
        "http route %s skipped: another route answers %s %s",
        route.trigger,
        str(route.row["http_method"]).upper(),
        route_path,
        extra={"action": "route_skipped"},
    )


class LiveRouteTable:
    """The current `RouteTable` of this instance, rebuilt when the routes changed."""

    def __init__(
        self,
        store: Store,
        *,
        check_interval_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._check_interval_s = check_interval_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._subscription = AsyncExitStack()
        self._changes: asyncio.Queue[str] | None = None
        self._table: RouteTable | None = None
        self._version: tuple[Any, ...] | None = None
        self._next_check = 0.0
        self._stale = True
        self._checks_started = 0

    async def current(self) -> RouteTable:
        """The table to route a request with, rebuilt first when it is stale."""
        if self._changes is None:
            self._changes = await self._subscription.enter_async_context(
                self._store.notifications.subscribe(ROUTES_CHANGED)
            )
        while not self._changes.empty():
            self._changes.get_nowait()
            self._stale = True
        table = self._table
        if table is not None and not self._stale and self._clock() < self._next_check:
            return table
        async with self._lock:
            if self._table is None or self._stale:
                return await self._rebuild()
            if self._clock() >= self._next_check:
                return await self._check()
            return self._table

    async def confirm_miss(self) -> RouteTable:
        """The table to answer a request the current table has no route for: a newer one when
        the routes changed since."""
        ticket = self._checks_started
        async with self._lock:
            # A check that started after this request's lookup answers for it too.
            if self._table is not None and self._checks_started > ticket:
                return self._table
            return await self._check()

    async def close(self) -> None:
        """Stop listening for route changes."""
        await self._subscription.aclose()
        self._changes = None

    async def _check(self) -> RouteTable:
        self._checks_started += 1
        async with self._store.transaction() as tx:
            version = await _version(tx)
        if version != self._version or self._table is None:
            return await self._rebuild()
        self._next_check = self._clock() + self._check_interval_s
        return self._table

    async def _rebuild(self) -> RouteTable:
        # Stale is cleared before reading: a change committed meanwhile marks it again.
        self._stale = False
        self._checks_started += 1
        try:
            async with self._store.transaction() as tx:
                version = await _version(tx)
                rows = await tx.fetch_all("http_routes_list_served")
        except BaseException:
            self._stale = True
            raise
        table = RouteTable(HttpRoute.from_row(row) for row in rows)
        self._table, self._version = table, version
        self._next_check = self._clock() + self._check_interval_s
        logger.info("http routes loaded: %d served", table.size, extra={"action": "routes_loaded"})
        return table


async def _version(tx: Transaction) -> tuple[Any, ...]:
    row = await tx.fetch_one("http_routes_version")
    assert row is not None
    return (row["routes"], str(row["last_edit"]), row["edits"])

"""Group commit of route jobs, walked step by step on a real store: concurrent requests share a
transaction, each is answered once its job is committed, and one bad job fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from gateway.errors import StoreError
from gateway.http_routes.routes.body import ParsedBody
from gateway.http_routes.routes.errors import RequestRefused
from gateway.http_routes.routes.http_args import HttpRequestInfo
from gateway.http_routes.routes.submit import RouteJobs
from gateway.http_routes.routes.table import HttpRoute
from gateway.jobs.model import Enqueued
from gateway.jobs.read import get_job
from gateway.store import Row, Store, Transaction, fetch_all

from ..support import WS, add_scripts
from .conftest import add_route

INFO = HttpRequestInfo(route="r", path="r", method="post", params={}, query={}, headers={})
JOB_INSERTS = ("insert_jobs", "enqueue_pinned_jobs")
"""The statements writing job rows: by script path, or pinned to a known script version."""


def refuse_poison(query: str, params: dict[str, Any]) -> None:
    """Fail a job insert when a job's args hold `poison`, as a database refuses a value it
    cannot store."""
    jobs = params["jobs"].value if query in JOB_INSERTS else []
    if any("poison" in job["args"] for job in jobs):
        raise StoreError("the database refused a job")


class _RefusingTransaction:
    """A transaction refusing poisoned jobs."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def execute(self, query: str, **params: Any) -> int:
        refuse_poison(query, params)
        return await self._tx.execute(query, **params)

    async def fetch_one(self, query: str, **params: Any) -> Row | None:
        return await self._tx.fetch_one(query, **params)

    async def fetch_all(self, query: str, **params: Any) -> list[Row]:
        return await self._tx.fetch_all(query, **params)

    def notify(self, channel: str, payload: str = "") -> None:
        self._tx.notify(channel, payload)

    async def run_script(self, sql: str) -> None:
        await self._tx.run_script(sql)


class GatedStore:
    """The test store, committing one transaction at a time (as on SQLite); each transaction
    waits at its start until the test opens its gate, unless `held` is off."""

    dialect = "sqlite"

    def __init__(self, store: Store, *, held: bool = True) -> None:
        self._store = store
        self.notifications = store.notifications
        self.secrets = store.secrets
        self.held = held
        self.gates: asyncio.Queue[asyncio.Event] = asyncio.Queue()
        self.transactions = 0

    async def _pass_gate(self) -> None:
        self.transactions += 1
        gate = asyncio.Event()
        await self.gates.put(gate)
        if self.held:
            await gate.wait()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        await self._pass_gate()
        async with self._store.transaction() as tx:
            yield _RefusingTransaction(tx)

    async def write(self, query: str, **params: Any) -> list[Row]:
        await self._pass_gate()
        refuse_poison(query, params)
        return await self._store.write(query, **params)

    async def close(self) -> None:
        """The real store stays open: the fixture closes it."""


@pytest.fixture
async def routes(store: Store) -> dict[str, HttpRoute]:
    """Routes `echo` (to the echo script) and `gone` (to a script that does not exist)."""
    await add_scripts(store, echo="def main(**kwargs):\n    return kwargs\n")
    paths = {
        "echo": await add_route(store, "echo", request_type="async"),
        "gone": await add_route(store, "gone", script="missing", request_type="async"),
    }
    rows = await fetch_all(store, "http_routes_list_served")
    by_path = {row["path"]: row for row in rows}
    return {name: HttpRoute.from_row(by_path[path]) for name, path in paths.items()}


def _submit(jobs: RouteJobs, route: HttpRoute, **args: Any) -> asyncio.Task[Enqueued]:
    return asyncio.create_task(
        jobs.submit(route, ParsedBody(args), INFO, created_by="test", idempotency_key=None)
    )


async def _committed(store: Store, task: asyncio.Task[Enqueued]) -> dict[str, Any]:
    return await get_job(store, WS, (await task).job_id)


async def test_requests_arriving_during_a_commit_share_the_next_transaction(
    store: Store, routes: dict[str, HttpRoute]
) -> None:
    gated = GatedStore(store)
    jobs = RouteJobs(gated)

    first = _submit(jobs, routes["echo"], n=1)
    first_gate = await gated.gates.get()
    # The first transaction is open; two more requests arrive while it runs.
    second, third = _submit(jobs, routes["echo"], n=2), _submit(jobs, routes["echo"], n=3)
    await asyncio.sleep(0)
    first_gate.set()
    assert (await _committed(store, first))["args"] == {"n": 1}

    # Both wait in the one next transaction, unanswered until it commits.
    next_gate = await gated.gates.get()
    assert not second.done() and not third.done()
    next_gate.set()
    assert (await _committed(store, second))["args"] == {"n": 2}
    assert (await _committed(store, third))["args"] == {"n": 3}
    assert gated.transactions == 2
    await jobs.close()


async def test_a_job_the_database_refuses_fails_only_its_own_request(
    store: Store, routes: dict[str, HttpRoute]
) -> None:
    gated = GatedStore(store, held=False)
    jobs = RouteJobs(gated)

    good, bad, other = (_submit(jobs, routes["echo"], **args) for args in ({}, {"poison": 1}, {}))

    assert (await _committed(store, good))["type"] == "QueuedJob"
    assert (await _committed(store, other))["type"] == "QueuedJob"
    with pytest.raises(StoreError, match="refused a job"):
        await bad
    # The batch of three failed; each was then committed (or refused) on its own.
    assert gated.transactions == 4
    await jobs.close()


async def test_a_missing_script_fails_only_the_requests_for_it(
    store: Store, routes: dict[str, HttpRoute]
) -> None:
    gated = GatedStore(store, held=False)
    jobs = RouteJobs(gated)

    good, gone = _submit(jobs, routes["echo"]), _submit(jobs, routes["gone"])

    assert (await _committed(store, good))["type"] == "QueuedJob"
    with pytest.raises(RequestRefused) as refused:
        await gone
    assert refused.value.status == 404
    assert gated.transactions == 1
    await jobs.close()


async def test_a_request_queued_as_the_committer_stops_starts_the_next_commit(
    store: Store, routes: dict[str, HttpRoute]
) -> None:
    jobs = RouteJobs(GatedStore(store, held=False))
    await _submit(jobs, routes["echo"], n=1)

    # The answer wakes this test before the finished committer's done callbacks have run: the
    # next request must still find a free committer slot (a hang guard, not a timing check).
    second = await asyncio.wait_for(_submit(jobs, routes["echo"], n=2), timeout=30)

    assert (await get_job(store, WS, second.job_id))["args"] == {"n": 2}
    await jobs.close()

"""Group commit of route jobs, walked step by step on a real store: concurrent requests share a
write (those of one route to a known script; the others), each is answered once its job is
committed, one bad job fails alone, and a store may take a second write while one runs, once
enough requests wait for it."""

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


def refuse_poison(query: str, params: dict[str, Any]) -> None:
    """Fail a job insert when a job's args hold `poison`, as a database refuses a value it
    cannot store."""
    if query == "insert_jobs":
        args = [job["args"] for job in params["jobs"].value]
    elif query == "enqueue_pinned_jobs":
        args = [args for _, _, args in params["jobs"].value]
    else:
        args = []
    if any("poison" in job_args for job_args in args):
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
    """The test store, with `writes_in_flight` writes at once; each transaction waits at its
    start until the test opens its gate, unless `held` is off."""

    dialect = "sqlite"

    def __init__(self, store: Store, *, held: bool = True, writes_in_flight: int = 1) -> None:
        self._store = store
        self.writes_in_flight = writes_in_flight
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
    """Routes `echo` and `echo_too` (to the echo script) and `gone` (to a script that does not
    exist)."""
    await add_scripts(store, echo="def main(**kwargs):\n    return kwargs\n")
    paths = {
        "echo": await add_route(store, "echo", request_type="async"),
        "echo_too": await add_route(store, "echo_too", request_type="async"),
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


async def _first_of_two_writes_held(
    route: HttpRoute, store: Store
) -> tuple[GatedStore, RouteJobs, asyncio.Task[Enqueued], asyncio.Event]:
    """Route jobs with two writes in flight, a second from two waiting requests, and the first
    write (of request `n=1`) held at its gate."""
    gated = GatedStore(store, writes_in_flight=2)
    jobs = RouteJobs(gated, min_extra_batch=2)
    first = _submit(jobs, route, n=1)
    return gated, jobs, first, await gated.gates.get()


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


async def test_a_second_write_starts_once_enough_requests_wait_for_it(
    store: Store, routes: dict[str, HttpRoute]
) -> None:
    gated, jobs, first, first_gate = await _first_of_two_writes_held(routes["echo"], store)
    # The first write is held. One request waiting is too few for a second write...
    second = _submit(jobs, routes["echo"], n=2)
    await asyncio.sleep(0)
    assert gated.gates.empty()
    # ...two start it at once, without waiting for the first.
    third = _submit(jobs, routes["echo"], n=3)
    second_gate = await gated.gates.get()
    second_gate.set()

    assert (await _committed(store, second))["args"] == {"n": 2}
    assert (await _committed(store, third))["args"] == {"n": 3}
    assert not first.done()
    first_gate.set()
    assert (await _committed(store, first))["args"] == {"n": 1}
    assert gated.transactions == 2
    await jobs.close()


async def test_a_write_ending_beside_another_leaves_a_few_waiting_requests_to_it(
    store: Store, routes: dict[str, HttpRoute]
) -> None:
    gated, jobs, first, first_gate = await _first_of_two_writes_held(routes["echo"], store)
    pair = [_submit(jobs, routes["echo"], n=n) for n in (2, 3)]
    pair_gate = await gated.gates.get()

    # Both writes are held when one more request comes: too few to write beside the first.
    last = _submit(jobs, routes["echo"], n=4)
    await asyncio.sleep(0)
    pair_gate.set()
    await asyncio.gather(*pair)
    assert gated.gates.empty()
    assert not last.done()

    # The first write, ending alone, takes it.
    first_gate.set()
    await first
    (await gated.gates.get()).set()
    assert (await _committed(store, last))["args"] == {"n": 4}
    assert gated.transactions == 3
    await jobs.close()


async def test_the_known_jobs_of_each_route_are_written_together_and_apart_from_others(
    store: Store, routes: dict[str, HttpRoute]
) -> None:
    gated = GatedStore(store, held=False)
    jobs = RouteJobs(gated)
    await _submit(jobs, routes["echo"])  # the echo script is known from now on
    await gated.gates.get()  # the gate that write passed, open
    gated.held = True
    first = _submit(jobs, routes["echo"])
    first_gate = await gated.gates.get()
    # While the first write is held, two routes to the known script get requests, and one
    # request names a missing script.
    echoes = [_submit(jobs, routes["echo"], n=n) for n in (1, 2)]
    too, gone = _submit(jobs, routes["echo_too"], n=3), _submit(jobs, routes["gone"])
    await asyncio.sleep(0)
    first_gate.set()
    await first

    # The next batch is three writes: each route's jobs, and the request to be resolved.
    for _ in range(3):
        (await gated.gates.get()).set()
    for task, route, n in ((echoes[0], "echo", 1), (echoes[1], "echo", 2), (too, "echo_too", 3)):
        job = await _committed(store, task)
        assert (job["trigger"], job["args"]) == (routes[route].trigger.path, {"n": n})
    with pytest.raises(RequestRefused):
        await gone
    assert gated.transactions == 5
    await jobs.close()

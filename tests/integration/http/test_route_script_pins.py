"""Route jobs pinned to the script version an instance resolved last: the pin is checked by the
statement that writes the jobs, so a new deployment, an archived or a deleted script is seen by
the very next request, and a known script costs no lookup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from gateway.http_routes.routes.body import ParsedBody
from gateway.http_routes.routes.errors import RequestRefused
from gateway.http_routes.routes.http_args import HttpRequestInfo
from gateway.http_routes.routes.submit import RouteJobs
from gateway.http_routes.routes.table import HttpRoute
from gateway.jobs.read import get_job
from gateway.scripts import Script, format_hash
from gateway.store import Row, Store, Transaction, execute, fetch_all

from ..support import WS, add_scripts
from .conftest import add_route

INFO = HttpRequestInfo(route="r", path="r", method="post", params={}, query={}, headers={})
ECHO = "def main(**kwargs):\n    return kwargs\n"
ECHO_AGAIN = "def main(**kwargs):\n    return {'again': kwargs}\n"


class CountingStore:
    """The test store, counting the named queries its transactions run."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.dialect = store.dialect
        self.writes_in_flight = store.writes_in_flight
        self.notifications = store.notifications
        self.secrets = store.secrets
        self.queries: list[str] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._store.transaction() as tx:
            yield _CountingTransaction(tx, self.queries)

    async def write(self, query: str, **params: Any) -> list[Row]:
        self.queries.append(query)
        return await self._store.write(query, **params)

    async def close(self) -> None:
        """The real store stays open: the fixture closes it."""


class _CountingTransaction:
    def __init__(self, tx: Transaction, queries: list[str]) -> None:
        self._tx = tx
        self._queries = queries

    async def execute(self, query: str, **params: Any) -> int:
        self._queries.append(query)
        return await self._tx.execute(query, **params)

    async def fetch_one(self, query: str, **params: Any) -> Row | None:
        self._queries.append(query)
        return await self._tx.fetch_one(query, **params)

    async def fetch_all(self, query: str, **params: Any) -> list[Row]:
        self._queries.append(query)
        return await self._tx.fetch_all(query, **params)

    def notify(self, channel: str, payload: str = "") -> None:
        self._tx.notify(channel, payload)

    async def run_script(self, sql: str) -> None:
        await self._tx.run_script(sql)


@pytest.fixture
async def echo(store: Store) -> HttpRoute:
    """An async route to the script `f/t/echo`."""
    await add_scripts(store, echo=ECHO)
    path = await add_route(store, "pinned", request_type="async")
    rows = await fetch_all(store, "http_routes_list_served")
    return HttpRoute.from_row(next(row for row in rows if row["path"] == path))


async def _script_hash_of_job(jobs: RouteJobs, store: Store, route: HttpRoute) -> str:
    queued = await jobs.submit(route, ParsedBody({}), INFO, created_by="test", idempotency_key=None)
    job = await get_job(store, WS, queued.job_id)
    return str(job["script_hash"])


def _hex(script: Script) -> str:
    return format_hash(script.hash)


async def test_a_known_script_is_not_read_again(store: Store, echo: HttpRoute) -> None:
    counting = CountingStore(store)
    jobs = RouteJobs(counting)

    await _script_hash_of_job(jobs, store, echo)
    counting.queries.clear()
    await _script_hash_of_job(jobs, store, echo)

    assert counting.queries == ["enqueue_pinned_jobs"]
    await jobs.close()


async def test_a_new_deployment_is_run_by_the_next_request(store: Store, echo: HttpRoute) -> None:
    jobs = RouteJobs(store)
    (first,) = (await add_scripts(store, echo=ECHO)).values()
    assert await _script_hash_of_job(jobs, store, echo) == _hex(first)

    (second,) = (await add_scripts(store, echo=ECHO_AGAIN)).values()

    assert second.hash != first.hash
    assert await _script_hash_of_job(jobs, store, echo) == _hex(second)
    await jobs.close()


@pytest.mark.parametrize("query", ["archive_script_versions", "delete_script_versions"])
async def test_a_script_gone_since_the_last_request_is_refused(
    store: Store, echo: HttpRoute, query: str
) -> None:
    jobs = RouteJobs(store)
    await _script_hash_of_job(jobs, store, echo)

    await execute(store, query, workspace_id=WS, path="f/t/echo")

    with pytest.raises(RequestRefused) as refused:
        await _script_hash_of_job(jobs, store, echo)
    assert refused.value.status == 404
    await jobs.close()

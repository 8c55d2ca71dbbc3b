"""What only the SQL lease store has: a table per kind, conditional claims, a locking fence."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import MappingProxyType

import psycopg
import pytest

from gateway.jobs.enqueue import enqueue
from gateway.jobs.read import JobFilter, list_jobs
from gateway.listeners.lease import Lease, LeaseLost, TriggerRef
from gateway.listeners.sql_lease_store import SqlLeaseStore, holds_lease
from gateway.store import Store, Transaction, open_store
from gateway.store.migrations import migrate
from gateway.store.notify import Broadcaster
from gateway.store.queries import load_queries
from gateway.store.trigger_tables import LEASED_KINDS, TRIGGER_TABLES
from gateway.triggers.pipeline import TriggerJobSink

from ..support import WS, add_scripts, eventually, job_of
from .support import STALE_S, add_trigger, age_leases, claim, frame, read_trigger

LEASE_QUERIES = (
    "list_stale_{}_triggers",
    "claim_{}_trigger",
    "ping_{}_trigger",
    "reset_{}_trigger_for_restart",
    "release_{}_trigger",
    "fence_{}_trigger",
)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_every_leased_kind_has_its_lease_queries_on_its_own_table(dialect: str) -> None:
    queries = load_queries(dialect)
    for kind in LEASED_KINDS:
        for template in LEASE_QUERIES:
            tables = set(re.findall(r"\b\w+_trigger\b", queries[template.format(kind)]))
            assert tables == {TRIGGER_TABLES[kind].table}


async def test_every_leased_kind_runs_the_protocol(store: Store) -> None:
    leases = SqlLeaseStore(store)
    for kind in LEASED_KINDS:
        lease = Lease(TriggerRef(kind, WS, "u/alice/missing"), "gw-a", MappingProxyType({}))

        assert await leases.claim_stale(kind, "gw-a", STALE_S) == []
        assert not await leases.ping(lease, None)
        await leases.reset_for_restart(lease.trigger)
        await leases.release(lease)
        async with store.transaction() as tx:
            assert not await holds_lease(tx, lease)


async def test_a_kind_without_a_leased_table_is_refused(store: Store) -> None:
    for kind in ("http", "email", "memory"):
        with pytest.raises(ValueError, match="not a leased trigger kind"):
            await SqlLeaseStore(store).claim_stale(kind, "gw-a", STALE_S)


class _InterleavedStore:
    """A store that runs `meanwhile` just before opening its `before`-th transaction."""

    def __init__(self, inner: Store, before: int, meanwhile: Callable[[], Awaitable[object]]):
        self.dialect = inner.dialect
        self.notifications: Broadcaster = inner.notifications
        self._inner = inner
        self._before = before
        self._meanwhile = meanwhile
        self._opened = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        self._opened += 1
        if self._opened == self._before:
            await self._meanwhile()
        async with self._inner.transaction() as tx:
            yield tx

    async def close(self) -> None:
        await self._inner.close()


async def test_a_claim_loses_a_trigger_another_instance_took_after_the_listing(
    store: Store,
) -> None:
    trigger = await add_trigger(store, "orders")
    other = SqlLeaseStore(store)
    taken: list[Lease] = []

    async def other_instance_claims() -> None:
        taken.extend(await other.claim_stale("websocket", "gw-b", STALE_S))

    # Transaction 1 lists the candidates; before transaction 2 (the conditional UPDATE), gw-b
    # claims the same row.
    late = SqlLeaseStore(_InterleavedStore(store, before=2, meanwhile=other_instance_claims))
    assert await late.claim_stale("websocket", "gw-a", STALE_S) == []

    assert [lease.trigger for lease in taken] == [trigger]
    assert (await read_trigger(store, trigger))["server_id"] == "gw-b"


async def test_the_fence_holds_a_takeover_until_the_batch_commits(postgres_url: str) -> None:
    store = await open_store(postgres_url)
    other = await open_store(postgres_url)
    try:
        await migrate(store)
        await add_scripts(store, echo="def main(msg: str):\n    return msg\n")
        trigger = await add_trigger(store, "orders")
        lease = await claim(store, trigger)
        await age_leases(store, "websocket", STALE_S + 1)

        async with store.transaction() as tx:
            assert await holds_lease(tx, lease)
            takeover = asyncio.create_task(
                SqlLeaseStore(other).claim_stale("websocket", "gw-b", STALE_S)
            )
            await eventually(lambda: _waiting_on_a_lock(postgres_url))
            assert not takeover.done()
            [queued] = await enqueue(tx, [job_of("echo", args={"msg": "last"})])

        [taken] = await takeover
        assert taken.trigger == trigger
        assert [job["id"] for job in await list_jobs(store, WS, JobFilter())] == [
            str(queued.job_id)
        ]
        with pytest.raises(LeaseLost):
            await TriggerJobSink(store).submit(lease, [frame("late", "m-1")])
    finally:
        await other.close()
        await store.close()


async def _waiting_on_a_lock(url: str) -> bool:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = await cursor.fetchone()
    return row is not None and row[0] > 0

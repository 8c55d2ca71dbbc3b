"""A batch of jobs written as rows in bulk (COPY on PostgreSQL, executemany on SQLite) reads back
exactly as the same jobs written by the JSON statements do."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from gateway.jobs.enqueue import enqueue
from gateway.jobs.model import NewJob
from gateway.jobs.read import get_job
from gateway.store import Row, Store, Transaction

from .support import WS, add_scripts, job_of

ODD_TEXT = 'tab\t, newline\n, backslash \\, quote ", NUL-free unicode é ✓'


class _StatementsOnly:
    """A transaction without bulk writes: enqueue falls back to its JSON statements."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def execute(self, query: str, **params: Any) -> int:
        return await self._tx.execute(query, **params)

    async def fetch_one(self, query: str, **params: Any) -> Row | None:
        return await self._tx.fetch_one(query, **params)

    async def fetch_all(self, query: str, **params: Any) -> list[Row]:
        return await self._tx.fetch_all(query, **params)

    def notify(self, channel: str, payload: str = "") -> None:
        self._tx.notify(channel, payload)

    async def run_script(self, sql: str) -> None:
        await self._tx.run_script(sql)


def varied_jobs(run: str) -> list[NewJob]:
    """Ten jobs, enough for a bulk write, between them setting every optional column."""
    return [
        job_of("hello", args={"msg": ODD_TEXT, "n": 1, "nested": {"list": [1, None, True]}}),
        job_of("hello", args={}, priority=7, timeout=30),
        job_of("hello", args={"n": 3}, delay_s=600),
        job_of("hello", args={"n": 4}, labels=("a", "b")),
        job_of("hello", args={"n": 5}, trigger="u/alice/orders", trigger_kind="kafka"),
        job_of("hello", args={"n": 6}, suspended=True),
        job_of("hello", args={"n": 7}, dedup_key=f"kafka:{run}/0/7"),
        job_of("hello", args={"n": 8}, apply_preprocessor=True),
        job_of("hello", args={"float": 1.5, "big": 2**53}),
        job_of("hello", args={"n": 10}, labels=()),
    ]


async def enqueue_jobs(store: Store, jobs: Sequence[NewJob], *, bulk: bool) -> list[UUID]:
    """Enqueue `jobs` in one transaction, in bulk or through the JSON statements."""
    async with store.transaction() as tx:
        queued = await enqueue(tx if bulk else _StatementsOnly(tx), jobs)
    return [entry.job_id for entry in queued]


def comparable(job: dict[str, Any]) -> dict[str, Any]:
    """A job without what differs between two enqueues of the same job: id and times."""
    return {
        key: value
        for key, value in job.items()
        if key not in {"id", "created_at", "scheduled_for", "started_at"}
    }


async def test_bulk_written_jobs_read_back_as_statement_written_ones(store: Store) -> None:
    await add_scripts(store, hello="def main(msg: str = '', n: int = 0):\n    return n\n")

    in_bulk = await enqueue_jobs(store, varied_jobs("bulk"), bulk=True)
    by_statement = await enqueue_jobs(store, varied_jobs("statement"), bulk=False)

    for bulk_id, statement_id in zip(in_bulk, by_statement, strict=True):
        bulk_job = await get_job(store, WS, bulk_id)
        statement_job = await get_job(store, WS, statement_id)
        assert comparable(bulk_job) == comparable(statement_job)


async def test_bulk_written_jobs_are_due_their_delay_after_their_creation(store: Store) -> None:
    await add_scripts(store, hello="def main(n: int = 0):\n    return n\n")

    ids = await enqueue_jobs(store, varied_jobs("due"), bulk=True)

    jobs = [await get_job(store, WS, job_id) for job_id in ids]
    created = {datetime.fromisoformat(job["created_at"]) for job in jobs}
    assert len(created) == 1  # one clock reading for the whole batch
    due_now, delayed = jobs[0], jobs[2]
    assert datetime.fromisoformat(due_now["scheduled_for"]) == min(created)
    assert datetime.fromisoformat(delayed["scheduled_for"]) == min(created) + timedelta(seconds=600)

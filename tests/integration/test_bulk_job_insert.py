"""A batch of jobs written as rows in bulk (COPY on PostgreSQL, executemany on SQLite) reads back
exactly as the same jobs written by the JSON statements do; so does a `JobBatch` (jobs that differ
only in their args and dedup keys), whose dedup keys map to the jobs they first became."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from gateway.jobs.enqueue import JobBatch, enqueue, enqueue_batch
from gateway.jobs.model import Enqueued, NewJob
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


def batch_of(
    template: NewJob, args: Sequence[dict[str, Any]], keys: Sequence[str | None]
) -> JobBatch:
    """The jobs `template` becomes with each of `args` and `keys`."""
    return JobBatch(template, args, [json.dumps(a) for a in args], keys)


async def enqueue_similar(store: Store, batch: JobBatch) -> list[Enqueued]:
    """Enqueue `batch` in one transaction, on the fast path."""
    async with store.transaction() as tx:
        return await enqueue_batch(tx, batch)


async def test_a_job_batch_reads_back_as_its_jobs_enqueued_one_by_one(store: Store) -> None:
    scripts = await add_scripts(store, hello="def main(msg: str = '', n: int = 0):\n    return n\n")
    args = [{"msg": ODD_TEXT, "n": n, "nested": {"list": [1, None, 2.5]}} for n in range(10)]
    for template in (
        job_of("hello", script_hash=scripts["hello"].hash, trigger="u/alice/orders",
               trigger_kind="kafka", labels=('a "quoted", label', "back\\slash", ODD_TEXT)),
        job_of("hello", script_hash=scripts["hello"].hash, suspended=True, priority=3, timeout=30,
               apply_preprocessor=True),
    ):  # fmt: skip
        keys = [f"kafka:u/alice/orders:{ODD_TEXT}/{template.suspended}/{n}" for n in range(10)]

        in_batch = await enqueue_similar(store, batch_of(template, args, keys))
        by_statement = await enqueue_jobs(
            store, [replace(template, args=a) for a in args], bulk=False
        )

        assert all(queued.created for queued in in_batch)
        for queued, statement_id in zip(in_batch, by_statement, strict=True):
            batch_job = await get_job(store, WS, queued.job_id)
            assert comparable(batch_job) == comparable(await get_job(store, WS, statement_id))


async def test_a_job_batch_maps_keys_seen_before_to_their_first_jobs(store: Store) -> None:
    scripts = await add_scripts(store, hello="def main(n: int = 0):\n    return n\n")
    template = job_of("hello", script_hash=scripts["hello"].hash)
    first = await enqueue_similar(
        store, batch_of(template, [{"n": n} for n in range(10)], [f"k-{n}" for n in range(10)])
    )

    # Keys 5..9 were seen; 10..14 are new, 12 twice in the batch; the last job has no key.
    keys = [*(f"k-{n}" for n in range(5, 15)), "k-12", None]
    again = await enqueue_similar(
        store, batch_of(template, [{"n": 100 + n} for n in range(12)], keys)
    )

    assert again[:5] == [Enqueued(queued.job_id, created=False) for queued in first[5:]]
    assert all(queued.created for queued in again[5:10])
    assert again[10] == Enqueued(again[7].job_id, created=False)
    assert again[11].created
    assert [(await get_job(store, WS, queued.job_id))["args"] for queued in again[5:]] == [
        {"n": 100 + n} for n in (*range(5, 10), 7, 11)
    ]


async def test_a_job_batch_without_dedup_keys_makes_a_job_of_each_entry(store: Store) -> None:
    scripts = await add_scripts(store, hello="def main(n: int = 0):\n    return n\n")
    template = job_of("hello", script_hash=scripts["hello"].hash)
    batch = batch_of(template, [{"n": n} for n in range(10)], [None] * 10)

    first = await enqueue_similar(store, batch)
    again = await enqueue_similar(store, batch)

    assert all(queued.created for queued in (*first, *again))
    assert len({queued.job_id for queued in (*first, *again)}) == 20

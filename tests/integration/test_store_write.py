"""`Store.write`: a named write committed alone, its rows and its notifications; on an SQLite
file it runs in the writer process, which a write in flight cannot outlive unnoticed."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import StoreError
from gateway.jobs.job_ids import new_job_id
from gateway.jobs.read import get_job
from gateway.scripts import Script
from gateway.store import Json, Store, open_store
from gateway.store.migrations import migrate
from gateway.store.notify import JOBS_QUEUED
from gateway.store.sqlite import SqliteStore

from .support import WS, add_scripts


def template(script: Script, **changes: Any) -> dict[str, Any]:
    """The template of `enqueue_pinned_jobs` for jobs running `script`."""
    return {
        "tag": "python3", "workspace_id": WS, "permissioned_as": "u/test",
        "permissioned_as_email": "test@example.com", "kind": "script",
        "runnable_id": script.hash, "runnable_path": script.path, "script_lang": "python3",
        "trigger": "f/t/route", "trigger_kind": "http", "delay_s": 0.0, **changes,
    }  # fmt: skip


def record(**args: Any) -> list[Any]:
    """One job of `enqueue_pinned_jobs`: a fresh id, its creator and its args."""
    return [str(new_job_id()), "test", args]


async def enqueue(store: Store, script: Script, records: list[list[Any]], **changes: Any) -> int:
    """Write `records` from the template of `script` (with `changes`); how many were written."""
    (outcome,) = await store.write(
        "enqueue_pinned_jobs",
        template=Json(template(script, **changes)),
        jobs=Json(records),
        ids=Json([job_id for job_id, _, _ in records]),
        channel=JOBS_QUEUED,
    )
    return int(outcome["written"])


@pytest.fixture
async def script(store: Store) -> Script:
    return (await add_scripts(store, echo="def main(**kwargs):\n    return kwargs\n"))["echo"]


async def test_a_write_commits_its_rows_and_publishes_once_committed(
    store: Store, script: Script
) -> None:
    jobs = [record(n=n) for n in range(3)]
    async with store.notifications.subscribe(JOBS_QUEUED) as woken:
        assert await enqueue(store, script, jobs) == 3
        await asyncio.wait_for(woken.get(), 5)

    job = await get_job(store, WS, jobs[2][0])
    assert job["args"] == {"n": 2}
    assert (job["type"], job["created_by"], job["job_kind"]) == ("QueuedJob", "test", "script")
    assert job["scheduled_for"] == job["created_at"]


async def test_a_delay_in_the_template_schedules_every_job_later(
    store: Store, script: Script
) -> None:
    jobs = [record(n=n) for n in range(2)]

    assert await enqueue(store, script, jobs, delay_s=3600.0) == 2

    for job_id, _, _ in jobs:
        job = await get_job(store, WS, job_id)
        scheduled, created = (
            datetime.fromisoformat(job[key]) for key in ("scheduled_for", "created_at")
        )
        assert scheduled - created > timedelta(minutes=59)


async def test_a_write_whose_pins_moved_writes_nothing(store: Store, script: Script) -> None:
    (newer,) = (await add_scripts(store, echo="def main():\n    return 2\n")).values()
    assert newer.hash != script.hash

    assert await enqueue(store, script, [record()]) == 0


async def test_a_refused_write_fails_alone(store: Store, script: Script) -> None:
    twice = record()
    with pytest.raises(StoreError):
        await enqueue(store, script, [twice, twice])

    assert await enqueue(store, script, [record()]) == 1


async def test_writes_in_flight_together_each_get_their_own_answer(
    store: Store, script: Script
) -> None:
    batches = [[record() for _ in range(size)] for size in (1, 2, 3, 4)]

    written = await asyncio.gather(*(enqueue(store, script, batch) for batch in batches))

    assert written == [1, 2, 3, 4]


async def test_the_writer_process_is_started_again_after_it_died(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'gateway.db'}")
    try:
        await migrate(store)
        (script,) = (await add_scripts(store, echo="def main():\n    return 1\n")).values()
        assert await enqueue(store, script, [record()]) == 1
        assert isinstance(store, SqliteStore) and store.writer_pid is not None
        os.kill(store.writer_pid, signal.SIGKILL)
        for _ in range(500):  # the event loop reaps the child: at most 5 s
            if store.writer_pid is None:
                break
            await asyncio.sleep(0.01)
        assert store.writer_pid is None

        assert await enqueue(store, script, [record()]) == 1
    finally:
        await store.close()


async def test_an_in_memory_database_is_written_in_process() -> None:
    store = await open_store("sqlite:///:memory:")
    try:
        await migrate(store)
        (script,) = (await add_scripts(store, echo="def main():\n    return 1\n")).values()

        assert await enqueue(store, script, [record()]) == 1
        assert isinstance(store, SqliteStore) and store.writer_pid is None
    finally:
        await store.close()

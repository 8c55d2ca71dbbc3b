"""The queue benchmark: how fast the gateway enqueues and runs no-op python3 jobs.

On PostgreSQL and on SQLite it measures the enqueue rate of batched jobs and the end-to-end
throughput of no-op jobs in a warm worker (`dedicated_worker`) and in a fresh process per job.
Two baselines run at the same concurrency: procrastinate, the peer queue, running the same no-op
work in-process (what a warm worker competes with), and a bare interpreter spawn (the floor of a
fresh-process job). Every measurement gets an empty database; the last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
from procrastinate import App, PsycopgConnector

from bench.common import (
    create_database,
    database_name,
    drop_databases,
    report,
    report_json,
    run_database_url,
)
from gateway.executor.worker import Executor
from gateway.jobs.enqueue import enqueue
from gateway.jobs.model import NewJob
from gateway.jobs.read import JobFilter, list_jobs
from gateway.scripts import ScriptDraft, save_script
from gateway.settings import Settings
from gateway.store import Store, open_store
from gateway.store.migrations import migrate
from gateway.workspaces import Identity, ensure_workspace

SLOTS = 4
"""Jobs run at once, by the gateway and by both baselines."""
ENQUEUE_JOBS = 5000
ENQUEUE_BATCH = 100
WARM_JOBS = 1000
COLD_JOBS = 200
PROCRASTINATE_JOBS = 2000
SPAWNS = 200
RUN_TIMEOUT_S = 120.0
"""A run that has not drained its queue by then is reported as failed."""

WORKSPACE = "bench"
OWNER = Identity("bench", "bench@example.com")
NOOP_PATH = "f/bench/noop"
NOOP_SOURCE = "def main():\n    return None\n"
DIALECTS = ("postgresql", "sqlite")


class JobsFailed(Exception):
    """A benchmark job did not succeed: the figures would measure something else."""


@asynccontextmanager
async def scratch_database(suffix: str) -> AsyncIterator[str]:
    """An empty PostgreSQL database named after the run's, dropped afterwards; its URL."""
    run_url = run_database_url()
    name = f"{database_name(run_url)}_{suffix}"
    url = await asyncio.to_thread(create_database, run_url, name)
    try:
        yield url
    finally:
        await asyncio.to_thread(drop_databases, run_url, name)


@asynccontextmanager
async def scratch_store(dialect: str, suffix: str) -> AsyncIterator[tuple[Store, str]]:
    """A migrated, empty store of `dialect`, closed and removed afterwards; it and its URL."""
    async with scratch_database(suffix) if dialect == "postgresql" else sqlite_url() as url:
        store = await open_store(url)
        try:
            await migrate(store)
            yield store, url
        finally:
            await store.close()


@asynccontextmanager
async def sqlite_url() -> AsyncIterator[str]:
    """The URL of a SQLite file in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as folder:
        yield f"sqlite:///{Path(folder) / 'bench.db'}"


async def add_noop_script(store: Store, *, dedicated_worker: bool) -> None:
    """Create the workspace and the no-op script."""
    draft = ScriptDraft(
        path=NOOP_PATH, content=NOOP_SOURCE, language="python3", dedicated_worker=dedicated_worker
    )
    async with store.transaction() as tx:
        await ensure_workspace(tx, WORKSPACE, OWNER)
        await save_script(tx, WORKSPACE, draft, OWNER.username)


def noop_job() -> NewJob:
    """One job of the no-op script."""
    return NewJob(
        workspace_id=WORKSPACE,
        args={},
        permissioned_as=OWNER.permissioned_as,
        permissioned_as_email=OWNER.email,
        created_by=OWNER.username,
        runnable_path=NOOP_PATH,
    )


async def enqueue_noop_jobs(store: Store, count: int) -> float:
    """Enqueue `count` no-op jobs, `ENQUEUE_BATCH` per transaction; the seconds it took."""
    started = time.perf_counter()
    for first in range(0, count, ENQUEUE_BATCH):
        batch = [noop_job() for _ in range(min(ENQUEUE_BATCH, count - first))]
        async with store.transaction() as tx:
            await enqueue(tx, batch)
    return time.perf_counter() - started


async def gateway_enqueue_rate(dialect: str) -> float:
    """Jobs enqueued per second, in batches, into an empty store."""
    async with scratch_store(dialect, "enqueue") as (store, _):
        await add_noop_script(store, dedicated_worker=False)
        return ENQUEUE_JOBS / await enqueue_noop_jobs(store, ENQUEUE_JOBS)


async def gateway_throughput(dialect: str, *, warm: bool, count: int) -> float:
    """No-op jobs completed per second by an executor with `SLOTS` slots, from a full queue."""
    async with scratch_store(dialect, "warm" if warm else "cold") as (store, url):
        await add_noop_script(store, dedicated_worker=warm)
        await enqueue_noop_jobs(store, count)
        settings = Settings.load(
            environ={}, database_url=url, executor_slots=SLOTS, instance_name="bench"
        )
        executor = Executor(store, settings)
        started = time.perf_counter()
        await executor.start()
        try:
            async with asyncio.timeout(RUN_TIMEOUT_S):
                while sum(executor.stats.completed.values()) < count:
                    await asyncio.sleep(0.005)
            elapsed = time.perf_counter() - started
        finally:
            await executor.stop()
        succeeded = executor.stats.completed.get("success", 0)
        if succeeded != count:
            failed = await list_jobs(store, WORKSPACE, JobFilter(success=False, per_page=1))
            raise JobsFailed(f"{count - succeeded} of {count} jobs failed, e.g. {failed[:1]}")
        return count / elapsed


async def procrastinate_throughput(count: int) -> float:
    """No-op tasks completed per second by a procrastinate worker of `SLOTS`, from a full queue."""
    async with scratch_database("procrastinate") as url:
        app = App(connector=PsycopgConnector(conninfo=url))

        @app.task(name="noop")
        async def noop() -> None:
            """The no-op task, run in the worker's process."""

        async with app.open_async():
            await app.schema_manager.apply_schema_async()
            for first in range(0, count, ENQUEUE_BATCH):
                await noop.batch_defer_async(
                    *({} for _ in range(min(ENQUEUE_BATCH, count - first)))
                )
            started = time.perf_counter()
            await app.run_worker_async(
                concurrency=SLOTS, wait=False, listen_notify=False, install_signal_handlers=False
            )
            elapsed = time.perf_counter() - started
        await check_procrastinate_jobs(url, count)
        return count / elapsed


async def check_procrastinate_jobs(url: str, count: int) -> None:
    """Raise `JobsFailed` unless all `count` procrastinate jobs succeeded."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
        )
        row = await cursor.fetchone()
    succeeded = row[0] if row else 0
    if succeeded != count:
        raise JobsFailed(f"{count - succeeded} of {count} procrastinate jobs did not succeed")


def spawn_ms(count: int) -> float:
    """Milliseconds per bare interpreter spawn, `SLOTS` spawns at a time."""
    argv = [sys.executable, "-c", "pass"]
    started = time.perf_counter()
    with ThreadPoolExecutor(SLOTS) as pool:
        for _ in pool.map(lambda _: subprocess.run(argv, check=True), range(count)):
            pass
    return (time.perf_counter() - started) * 1000 / count


async def measure(label: str, unit: str, figure: Callable[[], Awaitable[float]]) -> float:
    """Take one figure and print it."""
    value = await figure()
    report(label, value, unit)
    return value


async def run() -> dict[str, float]:
    """Take every figure; the raw figures and the ratios to the baselines."""
    figures: dict[str, float] = {}
    for dialect in DIALECTS:
        short = "pg" if dialect == "postgresql" else dialect
        figures[f"{short}_enqueue_per_s"] = await measure(
            f"gateway {dialect} enqueue ({ENQUEUE_BATCH} per transaction)",
            "jobs/s",
            lambda d=dialect: gateway_enqueue_rate(d),
        )
        figures[f"{short}_warm_per_s"] = await measure(
            f"gateway {dialect} warm worker, {SLOTS} slots",
            "jobs/s",
            lambda d=dialect: gateway_throughput(d, warm=True, count=WARM_JOBS),
        )
        figures[f"{short}_cold_per_s"] = await measure(
            f"gateway {dialect} fresh process per job, {SLOTS} slots",
            "jobs/s",
            lambda d=dialect: gateway_throughput(d, warm=False, count=COLD_JOBS),
        )
    figures["procrastinate_per_s"] = await measure(
        f"procrastinate in-process task, concurrency {SLOTS}",
        "jobs/s",
        lambda: procrastinate_throughput(PROCRASTINATE_JOBS),
    )

    async def spawn() -> float:
        return await asyncio.to_thread(spawn_ms, SPAWNS)

    figures["spawn_ms"] = await measure(f"bare interpreter spawn, {SLOTS} at a time", "ms", spawn)
    figures["cold_job_ms"] = 1000 / figures["pg_cold_per_s"]
    report("gateway postgresql fresh-process job cost", figures["cold_job_ms"], "ms")
    figures["warm_vs_procrastinate"] = figures["pg_warm_per_s"] / figures["procrastinate_per_s"]
    figures["cold_vs_spawn"] = figures["cold_job_ms"] / figures["spawn_ms"]
    report("warm_vs_procrastinate (target >= 1.5)", figures["warm_vs_procrastinate"], "x")
    report("cold_vs_spawn (target <= 1.3)", figures["cold_vs_spawn"], "x")
    return figures


def main() -> int:
    """Run the benchmark; non-zero when a job failed."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        figures = asyncio.run(run())
    except JobsFailed as exc:
        print(f"benchmark jobs failed: {exc}", file=sys.stderr)
        return 1
    figures["elapsed_s"] = time.perf_counter() - started
    report_json({key: round(value, 3) for key, value in figures.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())

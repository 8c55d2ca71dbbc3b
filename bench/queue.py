"""The queue benchmark: how fast the gateway enqueues and runs no-op python3 jobs.

On PostgreSQL and on SQLite it measures the enqueue rate of batched jobs and the end-to-end
throughput of no-op jobs in a warm worker (`dedicated_worker`) and in a fresh process per job.
Two baselines run at the same concurrency: procrastinate, the peer queue, running the same no-op
work in-process (what a warm worker competes with), and a bare interpreter spawn (the floor of a
fresh-process job).

Every measurement starts from an empty database. The machine is shared, so the measurements are
taken in interleaved rounds and each figure is the median of its rounds. The last line printed
is one JSON object with the figures and the ratios to the baselines.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import psycopg
from procrastinate import App, PsycopgConnector

from bench.common import (
    JOB_USER,
    create_database,
    database_name,
    drop_databases,
    report,
    run_and_report,
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
from gateway.store.notify import JOB_COMPLETED
from gateway.workspaces import Identity, ensure_workspace

SLOTS = 4
"""Jobs run at once, by the gateway and by both baselines."""
ROUNDS = 3
ENQUEUE_JOBS = 5000
ENQUEUE_BATCH = 100
WARM_JOBS = 1500
COLD_JOBS = 300
PROCRASTINATE_JOBS = 3000
SPAWNS = 300
RUN_TIMEOUT_S = 120.0
"""A run that has not drained its queue by then fails the benchmark."""

WORKSPACE = "bench"
OWNER = Identity("bench", "bench@example.com")
NOOP_PATH = "f/bench/noop"
NOOP_SOURCE = "def main():\n    return None\n"


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
async def scratch_sqlite() -> AsyncIterator[str]:
    """The URL of a SQLite file in a temporary folder, removed afterwards."""
    folder = await asyncio.to_thread(tempfile.mkdtemp, prefix="gw-bench-")
    try:
        yield f"sqlite:///{Path(folder) / 'bench.db'}"
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)


def scratch_url(dialect: str, suffix: str) -> AbstractAsyncContextManager[str]:
    """The URL of an empty database of `dialect`, removed afterwards."""
    return scratch_database(suffix) if dialect == "postgresql" else scratch_sqlite()


@asynccontextmanager
async def migrated_store(url: str) -> AsyncIterator[Store]:
    """The store at `url`, migrated, closed afterwards."""
    store = await open_store(url)
    try:
        await migrate(store)
        yield store
    finally:
        await store.close()


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
    async with scratch_url(dialect, "enqueue") as url, migrated_store(url) as store:
        await add_noop_script(store, dedicated_worker=False)
        return ENQUEUE_JOBS / await enqueue_noop_jobs(store, ENQUEUE_JOBS)


async def gateway_throughput(dialect: str, *, warm: bool, count: int) -> float:
    """No-op jobs completed per second by an executor with `SLOTS` slots, from a full queue."""
    async with scratch_url(dialect, "warm" if warm else "cold") as url:
        async with migrated_store(url) as store:
            await add_noop_script(store, dedicated_worker=warm)
            await enqueue_noop_jobs(store, count)
            settings = Settings.load(
                environ={},
                database_url=url,
                executor_slots=SLOTS,
                instance_name="bench",
                job_user=JOB_USER,
            )
            executor = Executor(store, settings)
            try:
                elapsed = await drain(store, executor, count)
            finally:
                await executor.stop()
        # Read the outcomes on a new connection: stopping an executor can leave the SQLite
        # store's connection inside a transaction that no later transaction can start in.
        async with migrated_store(url) as store:
            failed = await list_jobs(store, WORKSPACE, JobFilter(success=False, per_page=1))
        if failed:
            raise JobsFailed(f"a {dialect} job failed: {failed[0]['result']}")
        return count / elapsed


async def drain(store: Store, executor: Executor, count: int) -> float:
    """Start `executor`; the seconds until `count` distinct jobs are recorded as completed."""
    done: set[str] = set()
    async with store.notifications.subscribe(JOB_COMPLETED) as completions:
        started = time.perf_counter()
        await executor.start()
        async with asyncio.timeout(RUN_TIMEOUT_S):
            while len(done) < count:
                done.add(await completions.get())
        return time.perf_counter() - started


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


@dataclass(frozen=True, slots=True)
class Measurement:
    """One figure of the benchmark: its JSON key, its line's label and unit, how to take it."""

    key: str
    label: str
    unit: str
    take: Callable[[], Awaitable[float]]


def measurements() -> list[Measurement]:
    """Every figure taken in a round, in order."""
    taken = []
    for dialect, short in (("postgresql", "pg"), ("sqlite", "sqlite")):
        taken += [
            Measurement(
                f"{short}_enqueue_per_s",
                f"gateway {dialect} enqueue, {ENQUEUE_BATCH} per transaction",
                "jobs/s",
                partial(gateway_enqueue_rate, dialect),
            ),
            Measurement(
                f"{short}_warm_per_s",
                f"gateway {dialect} warm worker, {SLOTS} slots",
                "jobs/s",
                partial(gateway_throughput, dialect, warm=True, count=WARM_JOBS),
            ),
            Measurement(
                f"{short}_cold_per_s",
                f"gateway {dialect} fresh process per job, {SLOTS} slots",
                "jobs/s",
                partial(gateway_throughput, dialect, warm=False, count=COLD_JOBS),
            ),
        ]
    return [
        *taken,
        Measurement(
            "procrastinate_per_s",
            f"procrastinate in-process task, concurrency {SLOTS}",
            "jobs/s",
            partial(procrastinate_throughput, PROCRASTINATE_JOBS),
        ),
        Measurement(
            "spawn_ms",
            f"bare interpreter spawn, {SLOTS} at a time",
            "ms",
            partial(asyncio.to_thread, spawn_ms, SPAWNS),
        ),
    ]


async def run() -> dict[str, float]:
    """Take every figure in `ROUNDS` rounds; the medians and the ratios to the baselines."""
    samples: defaultdict[str, list[float]] = defaultdict(list)
    taken = measurements()
    for round_number in range(1, ROUNDS + 1):
        print(f"-- round {round_number} of {ROUNDS}", flush=True)
        for measurement in taken:
            value = await measurement.take()
            samples[measurement.key].append(value)
            report(measurement.label, value, measurement.unit)
    print(f"-- medians of {ROUNDS} rounds", flush=True)
    figures = {key: statistics.median(values) for key, values in samples.items()}
    for measurement in taken:
        report(measurement.label, figures[measurement.key], measurement.unit)
    figures["cold_job_ms"] = 1000 / figures["pg_cold_per_s"]
    figures["warm_vs_procrastinate"] = figures["pg_warm_per_s"] / figures["procrastinate_per_s"]
    figures["cold_vs_spawn"] = figures["cold_job_ms"] / figures["spawn_ms"]
    report(f"gateway postgresql fresh-process job, {SLOTS} slots", figures["cold_job_ms"], "ms")
    report("warm_vs_procrastinate (target >= 1.5)", figures["warm_vs_procrastinate"], "x")
    report("cold_vs_spawn (target <= 1.3)", figures["cold_vs_spawn"], "x")
    return figures


def main() -> int:
    """Run the benchmark; non-zero when a job failed."""
    # The procrastinate app lives in this script on purpose: its worker runs in this process.
    logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)
    return run_and_report(run, (JobsFailed,))


if __name__ == "__main__":
    sys.exit(main())

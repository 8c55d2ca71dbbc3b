"""The flow benchmark: what running ten no-op python3 steps as one flow costs per step.

The baseline is the same work without the engine: ten separate no-op jobs, each enqueued when
the previous one has completed (the chaining a flow does for its caller). Both run on the same
executor, in interleaved rounds, with warm workers (`dedicated_worker`) and with a fresh process
per job, on PostgreSQL and on SQLite. The per-step overhead is (flow time - jobs time) / 10 and
the ratio is flow time / jobs time (medians of the rounds). The last line printed is one JSON
object with the figures.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from bench.common import JOB_USER, report, report_json
from bench.queue import (
    NOOP_PATH,
    OWNER,
    WORKSPACE,
    JobsFailed,
    add_noop_script,
    migrated_store,
    noop_job,
    scratch_url,
)
from gateway.executor.worker import Executor
from gateway.jobs.enqueue import enqueue
from gateway.jobs.model import NewJob
from gateway.jobs.read import wait_for_completion
from gateway.settings import Settings
from gateway.store import Store

STEPS = 10
ROUNDS = 5
RUN_TIMEOUT_S = 120.0
FLOW = {
    "modules": [
        {"id": f"s{n}", "value": {"type": "script", "path": NOOP_PATH, "input_transforms": {}}}
        for n in range(STEPS)
    ]
}


def flow_job() -> NewJob:
    """One run of the ten-step flow."""
    return NewJob(
        workspace_id=WORKSPACE,
        args={},
        permissioned_as=OWNER.permissioned_as,
        permissioned_as_email=OWNER.email,
        created_by=OWNER.username,
        runnable_path="f/bench/ten_steps",
        flow_value=FLOW,
    )


async def run_to_end(store: Store, job: NewJob) -> None:
    """Enqueue `job` and wait until it completes successfully."""
    async with store.transaction() as tx:
        (queued,) = await enqueue(tx, [job])
    done = await wait_for_completion(store, WORKSPACE, queued.job_id, RUN_TIMEOUT_S, poll_s=0.05)
    if done is None or not done["success"]:
        raise JobsFailed(f"job {queued.job_id} did not succeed: {done}")


async def timed(work: Any) -> float:
    """The seconds an awaitable takes."""
    started = time.perf_counter()
    await work
    return time.perf_counter() - started


async def ten_jobs(store: Store) -> None:
    """Ten no-op jobs, one after the other."""
    for _ in range(STEPS):
        await run_to_end(store, noop_job())


async def measure(dialect: str, *, warm: bool) -> tuple[float, float]:
    """Median seconds of the ten-step flow and of the ten chained jobs."""
    suffix = "flow_warm" if warm else "flow_cold"
    async with scratch_url(dialect, suffix) as url, migrated_store(url) as store:
        await add_noop_script(store, dedicated_worker=warm)
        settings = Settings.load(
            environ={},
            database_url=url,
            executor_slots=4,
            instance_name="bench",
            job_user=JOB_USER,
            job_poll_interval_s=5.0,
        )
        executor = Executor(store, settings)
        await executor.start()
        try:
            await run_to_end(store, flow_job())  # warms the workers and the caches
            flows: list[float] = []
            jobs: list[float] = []
            for _ in range(ROUNDS):
                flows.append(await timed(run_to_end(store, flow_job())))
                jobs.append(await timed(ten_jobs(store)))
        finally:
            await executor.stop()
    return statistics.median(flows), statistics.median(jobs)


async def main() -> None:
    """Measure every dialect and mode, print the figures and the JSON line."""
    figures: dict[str, Any] = {"steps": STEPS, "rounds": ROUNDS}
    for dialect in ("postgresql", "sqlite"):
        for warm in (True, False):
            mode = "warm" if warm else "cold"
            flow_s, jobs_s = await measure(dialect, warm=warm)
            overhead_ms = (flow_s - jobs_s) / STEPS * 1000
            key = f"{dialect}_{mode}"
            report(f"{dialect} {mode}: 10-step flow", flow_s * 1000, "ms")
            report(f"{dialect} {mode}: 10 chained jobs", jobs_s * 1000, "ms")
            report(f"{dialect} {mode}: overhead per step", overhead_ms, "ms")
            report(f"{dialect} {mode}: flow / jobs", flow_s / jobs_s, "x")
            figures[f"{key}_flow_ms"] = round(flow_s * 1000, 2)
            figures[f"{key}_jobs_ms"] = round(jobs_s * 1000, 2)
            figures[f"{key}_overhead_per_step_ms"] = round(overhead_ms, 2)
            figures[f"{key}_ratio"] = round(flow_s / jobs_s, 3)
    report_json(figures)


if __name__ == "__main__":
    asyncio.run(main())

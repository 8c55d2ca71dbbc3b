"""kill -9 of a `gateway worker` in the middle of a job: another worker completes the job."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from uuid import UUID

from gateway.jobs.read import get_job
from gateway.store import Store, open_store
from gateway.store.migrations import migrate

from ..integration.support import WS, add_scripts, completed, eventually, job_of, submit
from .cli import gateway_env, start_gateway

SLOW_JOB = (
    "import time\n"
    "def main(seconds: float):\n"
    "    print('working', flush=True)\n"
    "    time.sleep(seconds)\n"
    "    return 'done'\n"
)


async def test_job_of_a_killed_worker_is_completed_by_another(
    postgres_url: str, tmp_path: Path
) -> None:
    store = await open_store(postgres_url)
    await migrate(store)
    await add_scripts(store, slow=SLOW_JOB)
    env = gateway_env(
        postgres_url,
        GATEWAY_MIGRATE_ON_START="false",
        GATEWAY_EXECUTOR_SLOTS="1",
        GATEWAY_JOB_HEARTBEAT_INTERVAL_S="0.5",
        GATEWAY_ZOMBIE_TIMEOUT_S="3",
        GATEWAY_JOB_POLL_INTERVAL_S="0.2",
    )
    first = start_gateway(
        "worker", env={**env, "GATEWAY_INSTANCE_NAME": "first"}, log=tmp_path / "first.log"
    )
    second = None
    try:
        (job_id,) = await submit(store, job_of("slow", args={"seconds": 2}))

        async def running_on_first() -> bool:
            job = await get_job(store, WS, job_id)
            return job.get("running") is True and job.get("worker") == "first"

        await eventually(running_on_first)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        second = start_gateway(
            "worker", env={**env, "GATEWAY_INSTANCE_NAME": "second"}, log=tmp_path / "second.log"
        )
        job = await completed(store, job_id, timeout_s=60)
        assert job["success"] is True, job
        assert job["result"] == "done"
        assert job["worker"] == "second"
        counter = await store_counter(store, job_id)
        assert counter == 1
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        await store.close()


async def store_counter(store: Store, job_id: UUID) -> int:
    async with store.transaction() as tx:
        row = await tx.fetch_one("get_zombie_count", job_id=job_id)
    return int(row["counter"]) if row else 0

"""The embedded executor against a real store: results, logs, retries, error handlers, cancel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.executor.worker import Executor
from gateway.jobs.cancel import cancel_job
from gateway.jobs.model import ErrorHandler
from gateway.jobs.read import JobFilter, get_job, get_logs, list_jobs
from gateway.jobs.retry import RetryPolicy
from gateway.jobs.zombies import requeue_zombie_jobs
from gateway.settings import Settings
from gateway.store import Store, fetch_all

from .support import WS, add_scripts, completed, eventually, job_of, submit


@pytest.fixture
async def executor(store: Store, settings: Settings) -> AsyncIterator[Executor]:
    running = Executor(store, settings)
    await running.start()
    yield running
    await running.stop(grace_s=1.0)


async def test_python_job_result_and_logs_are_recorded(store: Store, executor: Executor) -> None:
    await add_scripts(
        store, greet='def main(name: str):\n    print("hi", name)\n    return {"hello": name}\n'
    )
    (job_id,) = await submit(store, job_of("greet", args={"name": "ada"}))
    job = await completed(store, job_id)
    assert job["success"] is True
    assert job["result"] == {"hello": "ada"}
    assert job["worker"] == executor.worker_name
    assert job["duration_ms"] >= 0
    assert "hi ada" in await get_logs(store, WS, job_id)


async def test_bash_job_takes_positional_arguments(store: Store, executor: Executor) -> None:
    await add_scripts(store, sh=("bash", 'a="$1"\nb="$2"\necho "{\\"sum\\": $((a + b))}"\n'))
    (job_id,) = await submit(store, job_of("sh", args={"b": 2, "a": 40}))
    assert (await completed(store, job_id))["result"] == {"sum": 42}


async def test_missing_argument_fails_naming_it(store: Store, executor: Executor) -> None:
    await add_scripts(store, greet="def main(name: str):\n    return name\n")
    (job_id,) = await submit(store, job_of("greet"))
    job = await completed(store, job_id)
    assert job["success"] is False
    assert "name" in job["result"]["error"]["message"]


async def test_retries_then_error_handler_runs_once(store: Store, executor: Executor) -> None:
    await add_scripts(
        store,
        flaky='def main(x: int):\n    raise ValueError(f"boom {x}")\n',
        on_error="def main(error: dict, path: str, trigger_path: str, job_id: str, channel: str):\n"
        "    return {'seen': error['message'], 'path': path, 'trigger_path': trigger_path,"
        " 'job_id': job_id, 'channel': channel}\n",
    )
    policy = RetryPolicy.parse({"constant": {"attempts": 2, "seconds": 0}})
    (job_id,) = await submit(
        store,
        job_of(
            "flaky",
            args={"x": 7},
            retry=policy,
            error_handler=ErrorHandler("f/t/on_error", {"channel": "#ops"}),
            trigger_kind="kafka",
            trigger="u/alice/orders",
        ),
    )
    wrapper = await completed(store, job_id)
    assert wrapper["success"] is False
    assert wrapper["job_kind"] == "singlestepflow"
    assert len(wrapper["retries"]) == 3  # every failed attempt stays visible
    steps = await list_jobs(store, WS, JobFilter(parent_job=job_id, per_page=50))
    attempts = [s for s in steps if s["flow_step_id"] == "a"]
    handlers = [s for s in steps if s["flow_step_id"] == "failure"]
    assert len(attempts) == 3 and all(not a["success"] for a in attempts)
    assert sorted(a["id"] for a in attempts) == sorted(wrapper["retries"])
    assert len(handlers) == 1
    assert handlers[0]["result"] == {
        "seen": "boom 7",
        "path": "f/t/flaky",
        "trigger_path": "kafka_trigger/u/alice/orders",
        "job_id": str(job_id),
        "channel": "#ops",
    }
    alerts = await fetch_all(store, "list_alerts_of_workspace", workspace_id=WS)
    assert [a["alert_type"] for a in alerts] == ["job_failed"]


async def test_a_retry_that_succeeds_completes_the_wrapper(
    store: Store, executor: Executor
) -> None:
    await add_scripts(
        store,
        second_time_lucky="import os, pathlib\n"
        "def main(marker: str):\n"
        "    p = pathlib.Path(marker)\n"
        "    if not p.exists():\n"
        "        p.write_text('1')\n"
        "        raise RuntimeError('first attempt fails')\n"
        "    return 'ok'\n",
    )
    import tempfile

    marker = tempfile.mktemp()
    policy = RetryPolicy.parse({"constant": {"attempts": 3, "seconds": 0}})
    (job_id,) = await submit(
        store, job_of("second_time_lucky", args={"marker": marker}, retry=policy)
    )
    wrapper = await completed(store, job_id)
    assert wrapper["success"] is True
    assert wrapper["result"] == "ok"
    assert len(wrapper["retries"]) == 1


async def test_cancel_a_running_job_stops_its_process(store: Store, executor: Executor) -> None:
    await add_scripts(
        store,
        slow="import time\ndef main():\n    print('started', flush=True)\n    time.sleep(60)\n",
    )
    (job_id,) = await submit(store, job_of("slow"))

    async def started() -> bool:
        return "started" in await get_logs(store, WS, job_id)

    await eventually(started)
    async with store.transaction() as tx:
        assert await cancel_job(tx, WS, job_id, "bob", "too slow") is False
    job = await completed(store, job_id)
    assert job["status"] == "canceled"
    assert job["canceled_by"] == "bob"
    assert job["canceled_reason"] == "too slow"


async def test_jobs_of_a_dead_worker_are_requeued_then_failed(store: Store) -> None:
    await add_scripts(store, hello="def main():\n    return 1\n")
    (job_id,) = await submit(store, job_of("hello"))
    for attempt, worker in enumerate(("dead-worker", "dead-again")):
        async with store.transaction() as tx:
            # A worker claims the job and dies without ever pinging again.
            (row,) = await tx.fetch_all("claim_jobs", worker=worker, limit=1)
            await tx.execute("insert_runtimes", ids=[row["id"]])
        await asyncio.sleep(0.01)
        async with store.transaction() as tx:
            assert await requeue_zombie_jobs(tx, timeout_s=0, max_requeues=1) == [job_id]
        job = await get_job(store, WS, job_id)
        if attempt == 0:
            assert job["type"] == "QueuedJob" and job["running"] is False
    assert job["status"] == "failure"
    assert job["result"]["error"]["name"] == "ZombieJob"


async def test_graceful_stop_gives_running_jobs_back(store: Store, settings: Settings) -> None:
    await add_scripts(
        store, slow="import time\ndef main():\n    print('go', flush=True)\n    time.sleep(60)\n"
    )
    (job_id,) = await submit(store, job_of("slow"))
    executor = Executor(store, settings)
    await executor.start()

    async def started() -> bool:
        return "go" in await get_logs(store, WS, job_id)

    await eventually(started)
    await executor.stop(grace_s=0.2)
    job = await get_job(store, WS, job_id)
    assert job["type"] == "QueuedJob"
    assert job["running"] is False
    await asyncio.sleep(0)

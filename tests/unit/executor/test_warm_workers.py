"""Warm workers: a python3 script imported once, its jobs run one after another in one process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from executor_testkit import WAIT_LIMIT_S, CollectedLog, job, pids_in, wait_until_gone

from gateway.executor.outcome import RunOutcome
from gateway.executor.warm import WarmPool

COUNTER = (
    "import os, signal, time\n"
    "print(f'imported pid={os.getpid()}')\n"
    "calls = 0\n"
    "def main(label: str = '', sleep: float = 0, die: bool = False):\n"
    "    global calls\n"
    "    calls += 1\n"
    "    print(f'running {label}')\n"
    "    if die:\n"
    "        os.kill(os.getpid(), signal.SIGKILL)\n"
    "    time.sleep(sleep)\n"
    "    return {'pid': os.getpid(), 'calls': calls, 'job': os.environ.get('WM_JOB_ID')}\n"
)


@pytest.fixture
async def pool() -> AsyncIterator[WarmPool]:
    warm = WarmPool()
    yield warm
    await warm.close()


async def test_jobs_reuse_one_process_that_imported_the_script_once(pool: WarmPool) -> None:
    first_log, second_log = CollectedLog(), CollectedLog()

    first = await pool.run("f/warm/counter", 1, job(COUNTER, args={"label": "one"}), first_log)
    second = await pool.run("f/warm/counter", 1, job(COUNTER, args={"label": "two"}), second_log)

    assert first.success and second.success
    assert first.result["pid"] == second.result["pid"]
    assert (first.result["calls"], second.result["calls"]) == (1, 2)
    assert "imported" in first_log.text and "running one" in first_log.text
    assert second_log.text == "running two\n"


async def test_each_job_gets_its_own_environment(pool: WarmPool) -> None:
    first = await pool.run(
        "f/warm/counter", 1, job(COUNTER, env={"WM_JOB_ID": "a"}), CollectedLog()
    )
    second = await pool.run(
        "f/warm/counter", 1, job(COUNTER, env={"WM_JOB_ID": "b"}), CollectedLog()
    )

    assert (first.result["job"], second.result["job"]) == ("a", "b")


async def test_a_child_that_dies_fails_its_job_and_is_replaced(pool: WarmPool) -> None:
    before = await pool.run("f/warm/counter", 1, job(COUNTER), CollectedLog())

    died = await pool.run("f/warm/counter", 1, job(COUNTER, args={"die": True}), CollectedLog())
    after = await pool.run("f/warm/counter", 1, job(COUNTER), CollectedLog())

    assert died.result == {
        "error": {"name": "ExecutionErr", "message": "the job process was killed by SIGKILL"}
    }
    assert after.success
    assert after.result["pid"] != before.result["pid"]
    assert after.result["calls"] == 1


async def test_a_job_over_its_timeout_kills_the_child_and_the_next_job_gets_a_new_one(
    pool: WarmPool,
) -> None:
    before = await pool.run("f/warm/counter", 1, job(COUNTER), CollectedLog())

    slow = job(COUNTER, args={"sleep": 60}, timeout_s=0.5)
    timed_out = await asyncio.wait_for(
        pool.run("f/warm/counter", 1, slow, CollectedLog()), WAIT_LIMIT_S
    )
    after = await pool.run("f/warm/counter", 1, job(COUNTER), CollectedLog())

    assert timed_out.result == {
        "error": {"name": "TimeoutError", "message": "job exceeded its timeout of 0.5s"}
    }
    assert await wait_until_gone(before.result["pid"])
    assert after.success and after.result["pid"] != before.result["pid"]


async def test_errors_of_a_job_keep_the_child_for_the_next_job(pool: WarmPool) -> None:
    script = (
        "import os\n"
        "def main(name: str, big: bool = False):\n"
        "    return 'x' * 5000 if big else os.getpid()\n"
    )

    async def run(args: dict[str, Any]) -> RunOutcome:
        request = job(script, args=args, max_result_bytes=1000)
        return await pool.run("f/warm/strict", 1, request, CollectedLog())

    pid = (await run({"name": "n"})).result
    missing = await run({})
    too_large = await run({"name": "n", "big": True})
    again = await run({"name": "n"})

    assert missing.result == {
        "error": {
            "name": "MissingArgument",
            "message": "main() is missing required argument 'name'",
        }
    }
    assert too_large.result == {
        "error": {
            "name": "ResultTooLarge",
            "message": "result is 5002 bytes, the limit is 1000 bytes",
        }
    }
    assert again.result == pid


async def test_a_script_that_cannot_be_imported_fails_every_job(pool: WarmPool) -> None:
    script = "def main(:\n    pass\n"

    first = await pool.run("f/warm/broken", 1, job(script), CollectedLog())
    second = await pool.run("f/warm/broken", 1, job(script), CollectedLog())

    assert first.result["error"]["name"] == second.result["error"]["name"] == "SyntaxError"


async def test_cancelling_a_job_kills_the_child(pool: WarmPool) -> None:
    log = CollectedLog()
    running = asyncio.create_task(
        pool.run("f/warm/counter", 1, job(COUNTER, args={"sleep": 60}), log)
    )
    await log.wait_for("running")
    [pid] = pids_in(log.text, "pid")

    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    assert await wait_until_gone(pid)
    after = await pool.run("f/warm/counter", 1, job(COUNTER), CollectedLog())
    assert after.success and after.result["pid"] != pid


async def test_a_new_version_of_the_script_replaces_the_old_worker(pool: WarmPool) -> None:
    old = await pool.run("f/warm/counter", 1, job(COUNTER), CollectedLog())
    new_script = "import os\ndef main():\n    return {'pid': os.getpid(), 'version': 2}\n"

    new = await pool.run("f/warm/counter", 2, job(new_script), CollectedLog())

    assert new.result["version"] == 2
    assert await wait_until_gone(old.result["pid"])


async def test_closing_the_pool_ends_its_children() -> None:
    pool = WarmPool()
    ran = await pool.run("f/warm/counter", 1, job(COUNTER), CollectedLog())

    await pool.close()

    assert await wait_until_gone(ran.result["pid"])
    with pytest.raises(RuntimeError):
        await pool.run("f/warm/counter", 1, job(COUNTER), CollectedLog())


async def test_bash_jobs_run_in_fresh_processes(pool: WarmPool) -> None:
    request = job("echo $$\n", language="bash")

    first = await pool.run("f/warm/shell", 1, request, CollectedLog())
    second = await pool.run("f/warm/shell", 1, request, CollectedLog())

    assert first.success and second.success
    assert first.result != second.result


async def test_concurrent_jobs_of_one_script_get_their_own_workers() -> None:
    warm = WarmPool(max_per_version=2)
    try:
        first, second = await asyncio.gather(
            warm.run("f/warm/counter", 1, job(COUNTER, args={"sleep": 0.5}), CollectedLog()),
            warm.run("f/warm/counter", 1, job(COUNTER, args={"sleep": 0.5}), CollectedLog()),
        )
        third = await warm.run("f/warm/counter", 1, job(COUNTER), CollectedLog())
    finally:
        await warm.close()
    assert first.success and second.success and third.success
    assert first.result["pid"] != second.result["pid"]
    assert third.result["pid"] in (first.result["pid"], second.result["pid"])
    assert third.result["calls"] == 2

"""The sandbox of a fresh job: timeout, kills, memory limit, clean environment, streamed logs,
cancellation and clean-up."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from executor_testkit import (
    WAIT_LIMIT_S,
    CollectedLog,
    job,
    pids_in,
    process_is_gone,
    wait_until_gone,
)

from gateway.executor.memory import TreeMemorySampler
from gateway.executor.process import run_fresh

SLEEPER = "import time\ndef main():\n    time.sleep(60)\n"


@pytest.mark.parametrize(("language", "script"), [("python3", SLEEPER), ("bash", "sleep 60\n")])
async def test_a_job_over_its_timeout_is_killed(language: str, script: str) -> None:
    request = job(script, language=language, timeout_s=0.5)

    outcome = await asyncio.wait_for(run_fresh(request, CollectedLog()), WAIT_LIMIT_S)

    assert not outcome.success
    assert outcome.result == {
        "error": {"name": "TimeoutError", "message": "job exceeded its timeout of 0.5s"}
    }


async def test_a_job_killed_by_a_signal_fails_naming_the_signal() -> None:
    script = "import os, signal\ndef main():\n    os.kill(os.getpid(), signal.SIGKILL)\n"

    outcome = await run_fresh(job(script), CollectedLog())

    assert not outcome.success
    assert outcome.result == {
        "error": {"name": "ExecutionErr", "message": "the job process was killed by SIGKILL"}
    }


async def test_allocating_over_the_memory_limit_fails_with_memory_error() -> None:
    script = "def main():\n    block = bytearray(1024 ** 3)\n    return len(block)\n"

    outcome = await run_fresh(job(script, memory_limit_mb=200), CollectedLog())

    assert not outcome.success
    assert outcome.result["error"]["name"] == "MemoryError"


async def test_bash_commands_run_under_the_memory_limit() -> None:
    script = "ulimit -v\n"

    outcome = await run_fresh(job(script, language="bash", memory_limit_mb=200), CollectedLog())

    assert outcome.success
    assert outcome.result == 200 * 1024


async def test_the_child_sees_only_its_own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", "postgresql://gateway:secret@db/gateway")
    script = "import os\ndef main():\n    return dict(os.environ)\n"

    outcome = await run_fresh(job(script, env={"WM_JOB_ID": "j-1"}), CollectedLog())

    env = outcome.result
    assert set(env) == {"PATH", "HOME", "LANG", "TMPDIR", "WM_JOB_ID"}
    assert env["WM_JOB_ID"] == "j-1"
    assert env["HOME"] == env["TMPDIR"]
    assert not await asyncio.to_thread(Path(env["HOME"]).exists)  # the job dir is removed


async def test_a_bash_job_does_not_see_the_gateways_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", "postgresql://gateway:secret@db/gateway")
    script = 'echo "${GATEWAY_DATABASE_URL:-absent}"\n'

    outcome = await run_fresh(job(script, language="bash"), CollectedLog())

    assert outcome.result == "absent"


@pytest.mark.parametrize(
    ("language", "script"),
    [
        (
            "python3",
            "import os, time\n"
            "def main(gate: str):\n"
            "    print('waiting for the gate', flush=True)\n"
            "    while not os.path.exists(gate):\n"
            "        time.sleep(0.01)\n"
            "    return 'through'\n",
        ),
        (
            "bash",
            'gate="$1"\necho "waiting for the gate"\n'
            'while [ ! -e "$gate" ]; do sleep 0.01; done\necho through\n',
        ),
    ],
)
async def test_output_reaches_the_log_while_the_job_still_runs(
    language: str, script: str, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    log = CollectedLog()
    request = job(script, language=language, args={"gate": str(gate)}, arg_order=("gate",))
    running = asyncio.create_task(run_fresh(request, log))

    await log.wait_for("waiting for the gate")
    assert not running.done()
    gate.touch()
    outcome = await asyncio.wait_for(running, WAIT_LIMIT_S)

    assert outcome.success
    assert outcome.result == "through"


async def test_cancelling_the_job_kills_its_whole_process_group() -> None:
    script = (
        "import os, subprocess, time\n"
        "def main():\n"
        "    sleeper = subprocess.Popen(['sleep', '60'])\n"
        "    print(f'job={os.getpid()} child={sleeper.pid}', flush=True)\n"
        "    time.sleep(60)\n"
    )
    log = CollectedLog()
    running = asyncio.create_task(run_fresh(job(script), log))
    await log.wait_for("child=")
    [job_pid], [child_pid] = pids_in(log.text, "job"), pids_in(log.text, "child")

    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    assert process_is_gone(job_pid)
    assert await wait_until_gone(child_pid)


async def test_what_a_bash_job_leaves_running_is_killed_when_it_ends() -> None:
    script = 'sleep 60 &\necho "background=$!"\n'
    log = CollectedLog()

    outcome = await run_fresh(job(script, language="bash"), log)

    assert outcome.success
    [background] = pids_in(log.text, "background")
    assert await wait_until_gone(background)


async def test_memory_sampler_sees_the_peak_of_a_descendant() -> None:
    allocate = (
        "import sys, time; block = bytearray(64 * 1024 * 1024); "
        "print('ready', flush=True); time.sleep(60)"
    )
    tree = await asyncio.create_subprocess_exec(
        *("bash", "-c", '"$0" -c "$1"; true', sys.executable, allocate),
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert tree.stdout is not None
        assert await asyncio.wait_for(tree.stdout.readline(), WAIT_LIMIT_S) == b"ready\n"
        sampler = TreeMemorySampler(tree.pid)

        sampler.sample()

        assert sampler.peak_kb is not None
        assert sampler.peak_kb >= 64 * 1024
    finally:
        os.killpg(tree.pid, signal.SIGKILL)
        await tree.wait()


async def test_packages_installed_beside_the_gateway_are_importable() -> None:
    script = "import pydantic\ndef main():\n    return pydantic.__name__\n"

    outcome = await run_fresh(job(script), CollectedLog())

    assert outcome.result == "pydantic"


async def test_a_failing_log_sink_does_not_fail_the_job() -> None:
    async def broken_sink(chunk: str) -> None:
        raise ConnectionError("the log store is down")

    script = "def main():\n    print('some output')\n    return 'done'\n"

    outcome = await run_fresh(job(script), broken_sink)

    assert outcome.success
    assert outcome.result == "done"

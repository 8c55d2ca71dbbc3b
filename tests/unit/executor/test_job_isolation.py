"""Jobs as an unprivileged user, with CPU, open-file, process and file-size limits.

The tests that switch users need a test run as root; the python3 ones also need an interpreter
the job user can run (a gateway refuses to start without one, see `resolve_job_user`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pwd
import shutil
import stat
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from executor_testkit import CollectedLog, job, wait_until_gone

from gateway.errors import ConfigError
from gateway.executor.job_user import JobUser, resolve_job_user, unreachable_part
from gateway.executor.limits import JobLimits
from gateway.executor.outcome import RunRequest
from gateway.executor.process import run_fresh
from gateway.executor.warm import WarmWorker
from gateway.store import open_store
from gateway.store.migrations import migrate

requires_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


def nobody() -> JobUser:
    entry = pwd.getpwnam("nobody")
    return JobUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def as_nobody(request: RunRequest, **limits: int) -> RunRequest:
    return dataclasses.replace(request, user=nobody(), limits=JobLimits(**limits))


def with_limits(request: RunRequest, **limits: int) -> RunRequest:
    return dataclasses.replace(request, limits=JobLimits(**limits))


def error_message(result: object) -> str:
    assert isinstance(result, dict)
    message: str = result["error"]["message"]
    return message


def processes_of(uid: int) -> list[int]:
    """Live processes of `uid` (zombies not counted)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
            found.append(int(entry.name))
    return found


async def wait_for_no_processes_of(uid: int) -> list[int]:
    """Wait for the processes `uid` has now to end; returns those it has then."""
    for pid in processes_of(uid):
        await wait_until_gone(pid)
    return processes_of(uid)


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder every user may enter (as the folder of a gateway's database usually is)."""
    folder = Path(tempfile.mkdtemp(prefix="gateway-sandbox-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def database_file(shared_folder: Path) -> AsyncIterator[Path]:
    """A migrated SQLite database with its -wal and -shm files, open while the test runs."""
    path = shared_folder / "gateway.db"
    store = await open_store(f"sqlite:///{path}")
    await migrate(store)
    yield path
    await store.close()


@requires_root
async def test_a_job_runs_as_the_job_user() -> None:
    outcome = await run_fresh(as_nobody(job("whoami\n", language="bash")), CollectedLog())

    assert outcome.success, outcome.result
    assert outcome.result == "nobody"


@requires_root
async def test_the_job_directory_belongs_to_the_job_user_alone_and_is_removed() -> None:
    log = CollectedLog()
    script = 'echo "dir=$PWD"; stat -c "%a %U" .\n'

    outcome = await run_fresh(as_nobody(job(script, language="bash")), log)

    assert outcome.result == "700 nobody"
    workdir = Path(log.text.split("dir=", 1)[1].split()[0])
    assert not await asyncio.to_thread(workdir.exists)


@requires_root
async def test_the_job_directory_is_removed_after_a_timeout() -> None:
    log = CollectedLog()
    request = as_nobody(job('echo "dir=$PWD"; sleep 60\n', language="bash", timeout_s=1))

    outcome = await run_fresh(request, log)

    assert error_message(outcome.result) == "job exceeded its timeout of 1s"
    workdir = Path(log.text.split("dir=", 1)[1].split()[0])
    assert not await asyncio.to_thread(workdir.exists)


@requires_root
async def test_a_job_cannot_read_the_database_files(database_file: Path) -> None:
    files = [Path(f"{database_file}{suffix}") for suffix in ("", "-wal", "-shm")]
    assert all(path.exists() for path in files)
    script = 'for file in "$@"; do cat "$file" > /dev/null || exit 3; done\n'
    request = job(
        script,
        language="bash",
        args={str(n): str(path) for n, path in enumerate(files)},
        arg_order=[str(n) for n in range(len(files))],
    )

    outcome = await run_fresh(as_nobody(request), CollectedLog())

    assert not outcome.success
    assert "Permission denied" in error_message(outcome.result)
    assert [stat.S_IMODE(path.stat().st_mode) for path in files] == [0o600] * 3


@requires_root
async def test_a_job_cannot_read_the_gateways_environment() -> None:
    request = as_nobody(job('cat "/proc/$PPID/environ" > /dev/null\n', language="bash"))

    outcome = await run_fresh(request, CollectedLog())

    assert not outcome.success
    assert f"/proc/{os.getpid()}/environ: Permission denied" in error_message(outcome.result)


@requires_root
async def test_a_fork_bomb_meets_the_process_limit_and_leaves_nothing_behind() -> None:
    log = CollectedLog()
    bomb = as_nobody(
        job("while :; do sleep 60 & done\n", language="bash", timeout_s=3), processes=32
    )

    outcome = await run_fresh(bomb, log)

    assert not outcome.success
    assert "fork: retry: Resource temporarily unavailable" in log.text
    assert await wait_for_no_processes_of(nobody().uid) == []
    after = await run_fresh(as_nobody(job("echo fine\n", language="bash")), CollectedLog())
    assert after.result == "fine"


@requires_root
async def test_a_bash_job_over_its_open_files_fails() -> None:
    script = "for n in $(seq 100); do exec {fd}< /dev/null || exit 4; done\n"

    outcome = await run_fresh(
        as_nobody(job(script, language="bash"), open_files=32), CollectedLog()
    )

    assert not outcome.success
    assert "exited with code 4" in error_message(outcome.result)


@requires_root
async def test_a_bash_job_over_its_cpu_time_is_killed_with_the_reason() -> None:
    request = as_nobody(job("while :; do :; done\n", language="bash"), cpu_s=1)

    outcome = await run_fresh(request, CollectedLog())

    assert error_message(outcome.result) == (
        "the job process exceeded its CPU time limit (GATEWAY_JOB_CPU_LIMIT_S) "
        "and was killed by SIGXCPU"
    )


async def test_a_python_job_over_its_open_files_fails() -> None:
    script = "def main():\n    return [open('/dev/null') for _ in range(100)]\n"

    outcome = await run_fresh(with_limits(job(script), open_files=32), CollectedLog())

    assert not outcome.success
    assert "Too many open files" in error_message(outcome.result)


async def test_a_python_job_over_its_cpu_time_is_killed_with_the_reason() -> None:
    script = "def main():\n    while True:\n        pass\n"

    outcome = await run_fresh(with_limits(job(script), cpu_s=1), CollectedLog())

    assert "exceeded its CPU time limit" in error_message(outcome.result)


async def test_a_python_job_writing_past_the_file_size_limit_fails() -> None:
    script = "def main():\n    with open('big', 'wb') as out:\n        out.write(b'x' * 200_000)\n"

    outcome = await run_fresh(with_limits(job(script), file_bytes=100_000), CollectedLog())

    assert not outcome.success
    assert "File too large" in error_message(outcome.result)


async def test_a_warm_worker_limits_the_cpu_time_of_each_job_not_of_its_life() -> None:
    busy = (
        "import time\n"
        "def main(seconds):\n"
        "    end = time.process_time() + seconds\n"
        "    while time.process_time() < end:\n"
        "        pass\n"
        "    return 'done'\n"
    )
    worker = WarmWorker("f/tests/busy")
    try:
        first = await worker.run(
            with_limits(job(busy, args={"seconds": 0.7}), cpu_s=1), CollectedLog()
        )
        second = await worker.run(
            with_limits(job(busy, args={"seconds": 0.7}), cpu_s=1), CollectedLog()
        )
        endless = await worker.run(
            with_limits(job(busy, args={"seconds": 60}), cpu_s=1), CollectedLog()
        )
    finally:
        await worker.close()

    assert (first.result, second.result) == ("done", "done")
    assert "exceeded its CPU time limit" in error_message(endless.result)


@requires_root
@pytest.mark.skipif(
    unreachable_part(Path(sys.executable), nobody()) is not None,
    reason="the job user cannot run this interpreter (a gateway refuses to start so)",
)
@pytest.mark.parametrize("warm", [False, True])
async def test_a_python_job_runs_as_the_job_user(warm: bool) -> None:
    request = as_nobody(job("import os\ndef main():\n    return os.getuid()\n"))
    if warm:
        worker = WarmWorker("f/tests/uid")
        try:
            outcome = await worker.run(request, CollectedLog())
        finally:
            await worker.close()
    else:
        outcome = await run_fresh(request, CollectedLog())

    assert outcome.result == nobody().uid


@requires_root
def test_an_unknown_job_user_is_a_clear_start_up_error() -> None:
    with pytest.raises(ConfigError, match="the user 'no-such-job-user' does not exist"):
        resolve_job_user("no-such-job-user")


def test_a_gateway_that_is_not_root_runs_jobs_as_itself() -> None:
    assert resolve_job_user("nobody", euid=1000) is None


def test_a_private_folder_on_the_way_to_the_interpreter_is_named(shared_folder: Path) -> None:
    private = shared_folder / "private"
    (private / "bin").mkdir(parents=True)
    private.chmod(0o700)
    program = private / "bin" / "python"
    program.write_text("")
    program.chmod(0o755)
    link = shared_folder / "python"
    link.symlink_to(program)

    assert unreachable_part(link, nobody()) == private
    assert unreachable_part(Path("/bin/sh").resolve(), nobody()) is None

"""A job's process sandbox: its own session, a clean environment, a fresh directory, a sure end.

Every child leads a new session (``start_new_session=True``), so that one SIGKILL to its process
group ends the job and whatever it started. A process that leaves the group on purpose (``setsid``)
escapes that kill; its output is no longer waited for after `DRAIN_GRACE_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

EXECUTION_ERROR = "ExecutionErr"
"""Windmill's error name for a job that failed outside the user's code."""

DRAIN_GRACE_S = 2.0
"""How long the output of a finished job may still arrive before its readers are stopped."""


def job_environment(workdir: Path, env: Mapping[str, str]) -> dict[str, str]:
    """The child's whole environment: the job's variables, then PATH, HOME, LANG and TMPDIR.

    Nothing else is inherited from the gateway, whose environment holds its own secrets.
    """
    return {
        **env,
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "TMPDIR": str(workdir),
    }


async def make_job_dir() -> Path:
    """A fresh private directory: the child's HOME, TMPDIR and working directory."""
    return Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="gateway-job-"))


async def remove_job_dir(workdir: Path) -> None:
    """Remove a job directory and whatever the job left in it."""
    await asyncio.to_thread(shutil.rmtree, workdir, ignore_errors=True)


async def spawn(
    argv: Sequence[str],
    *,
    workdir: Path,
    env: Mapping[str, str],
    merge_stderr: bool,
    pass_fds: Iterable[int] = (),
) -> asyncio.subprocess.Process:
    """Start a child in its own session, with stdout (and stderr) piped and no stdin."""
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE,
        cwd=workdir,
        env=env,
        start_new_session=True,
        pass_fds=tuple(pass_fds),
    )


def kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGKILL the child's whole process group; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def end_process(
    process: asyncio.subprocess.Process, readers: Iterable[asyncio.Task[None]]
) -> None:
    """Kill what is left of the child's group, reap the child and let its output drain."""
    kill_group(process)
    await process.wait()
    readers = list(readers)
    if not readers:
        return
    _, late = await asyncio.wait(readers, timeout=DRAIN_GRACE_S)
    if late:
        logger.warning(
            "a process that left the group of job process %d still holds its output; "
            "the output is no longer read",
            process.pid,
            extra={"action": "job_output_abandoned"},
        )
    for reader in late:
        reader.cancel()
    for result in await asyncio.gather(*readers, return_exceptions=True):
        if isinstance(result, Exception):
            logger.warning(
                "reading the output of job process %d failed",
                process.pid,
                exc_info=result,
                extra={"action": "job_output_failed"},
            )


def exit_message(returncode: int, program: str) -> str:
    """How a child ended, for an error message: its exit code, or the signal that killed it."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"the job process was killed by {name}"
    return f"{program} exited with code {returncode}"


def timeout_message(timeout_s: float) -> str:
    """The message of a job killed at its timeout."""
    return f"job exceeded its timeout of {timeout_s:g}s"

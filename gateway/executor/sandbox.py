"""A job's process sandbox: its own session, a clean environment, a fresh directory, a sure end.

Every child leads a new session (``start_new_session=True``), so that one SIGKILL to its process
group ends the job and whatever it started. A process that leaves the group on purpose (``setsid``)
escapes that kill; its output is no longer waited for after `DRAIN_GRACE_S`.

A gateway running as root starts children as the job user (`gateway.executor.job_user`), in a
directory that user owns (mode 0700), removed when the job ends whatever the ending; the child sets
its own resource limits (`gateway.executor.limits`) before the script runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway.executor.job_user import JobUser

logger = logging.getLogger(__name__)

EXECUTION_ERROR = "ExecutionErr"
"""Windmill's error name for a job that failed outside the user's code."""

DRAIN_GRACE_S = 2.0
"""How long the output of a finished job may still arrive before its readers are stopped."""

STREAM_LIMIT = 64 * 1024
"""Bytes of unread output buffered per pipe before the child is made to wait."""

LIMIT_SIGNALS: dict[int, str] = {
    signal.SIGXCPU: "CPU time limit (GATEWAY_JOB_CPU_LIMIT_S)",
    signal.SIGXFSZ: "file size limit (GATEWAY_JOB_MAX_FILE_BYTES)",
}
"""The signals the kernel sends a process over a resource limit, and which limit each means."""


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


async def make_job_dir(prepare: Callable[[Path], None], user: JobUser | None = None) -> Path:
    """A fresh directory (mode 0700, owned by `user` if given), filled by `prepare` in a thread.

    It is the child's HOME, TMPDIR and working directory.
    """
    return await asyncio.to_thread(_make_job_dir, prepare, user)


def _make_job_dir(prepare: Callable[[Path], None], user: JobUser | None) -> Path:
    workdir = Path(tempfile.mkdtemp(prefix="gateway-job-"))  # mode 0700
    try:
        prepare(workdir)
        if user is not None:
            os.chown(workdir, user.uid, user.gid)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return workdir


async def remove_job_dir(workdir: Path) -> None:
    """Remove a job directory and whatever the job left in it."""
    await asyncio.to_thread(shutil.rmtree, workdir, ignore_errors=True)


class _ChildProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """The streams of `asyncio.create_subprocess_exec`, plus a future set when the child exits.

    ``Process.wait()`` also waits for the child's pipes to close, which a process it left running
    can delay for ever; a job ends when its own process exits.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=STREAM_LIMIT, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


class JobProcess:
    """A job's child: its output streams, its exit, and the kill of its whole process group."""

    def __init__(self, transport: asyncio.SubprocessTransport, protocol: _ChildProtocol) -> None:
        assert protocol.stdout is not None
        self.pid = transport.get_pid()
        self.stdout = protocol.stdout
        self.stderr = protocol.stderr
        self._transport = transport
        self._protocol = protocol
        self._group_killed = False

    @property
    def returncode(self) -> int | None:
        """The exit status (negative: the signal that killed it), or None while it runs."""
        return self._transport.get_returncode()

    async def wait(self) -> int:
        """Wait for the child to exit and return its status."""
        await asyncio.shield(self._protocol.exited)
        returncode = self._transport.get_returncode()
        assert returncode is not None
        return returncode

    async def end(self, readers: Iterable[asyncio.Task[None]]) -> int:
        """Kill what is left of the group, wait for the exit and let the output drain.

        Returns the child's exit status. The group is killed once only: later, its id may belong
        to another process group.
        """
        if not self._group_killed:
            self._group_killed = True
            with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
                os.killpg(self.pid, signal.SIGKILL)
        returncode = await self.wait()
        readers = list(readers)
        if readers:
            _, late = await asyncio.wait(readers, timeout=DRAIN_GRACE_S)
            if late:
                logger.warning(
                    "a process that left the group of job process %d still holds its output; "
                    "the output is no longer read",
                    self.pid,
                    extra={"action": "job_output_abandoned"},
                )
            for reader in late:
                reader.cancel()
            for result in await asyncio.gather(*readers, return_exceptions=True):
                if isinstance(result, Exception):
                    logger.warning(
                        "reading the output of job process %d failed",
                        self.pid,
                        exc_info=result,
                        extra={"action": "job_output_failed"},
                    )
        self._transport.close()
        return returncode


async def spawn(
    argv: Sequence[str],
    *,
    workdir: Path,
    env: Mapping[str, str],
    merge_stderr: bool,
    pass_fds: Iterable[int] = (),
    user: JobUser | None = None,
) -> JobProcess:
    """Start a child in its own session, with stdout (and stderr) piped and no stdin.

    With `user`, the child switches to that user and its primary group (no other group) before
    it runs `argv`.
    """
    loop = asyncio.get_running_loop()
    identity: dict[str, Any] = {}
    if user is not None:
        identity = {"user": user.uid, "group": user.gid, "extra_groups": []}
    transport, protocol = await loop.subprocess_exec(
        lambda: _ChildProtocol(loop),
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE,
        cwd=workdir,
        env=env,
        start_new_session=True,
        pass_fds=tuple(pass_fds),
        **identity,
    )
    return JobProcess(transport, protocol)


def exit_message(returncode: int, program: str) -> str:
    """How a child ended, for an error message: its exit code, or the signal that killed it."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        reason = LIMIT_SIGNALS.get(-returncode)
        if reason is not None:
            return f"the job process exceeded its {reason} and was killed by {name}"
        return f"the job process was killed by {name}"
    return f"{program} exited with code {returncode}"


def timeout_message(timeout_s: float) -> str:
    """The message of a job killed at its timeout."""
    return f"job exceeded its timeout of {timeout_s:g}s"

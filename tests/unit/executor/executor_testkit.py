"""Helpers of the executor's unit tests: job requests, and a job log a test can wait on."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.executor.outcome import RunRequest

WAIT_LIMIT_S = 30.0
"""How long a test waits for something that should happen at once before it fails."""


def job(
    content: str,
    *,
    language: str = "python3",
    args: Mapping[str, Any] | None = None,
    timeout_s: float = WAIT_LIMIT_S,
    memory_limit_mb: int | None = None,
    env: Mapping[str, str] | None = None,
    max_result_bytes: int = 100_000,
    run_preprocessor: bool = False,
    arg_order: Sequence[str] = (),
    script_path: str = "f/tests/job",
) -> RunRequest:
    """A job request with test defaults."""
    return RunRequest(
        language=language,
        content=content,
        script_path=script_path,
        args=args or {},
        timeout_s=timeout_s,
        memory_limit_mb=memory_limit_mb,
        env=env or {},
        max_result_bytes=max_result_bytes,
        run_preprocessor=run_preprocessor,
        arg_order=arg_order,
    )


class CollectedLog:
    """A `LogSink` that keeps every chunk and lets a test wait for some text to arrive."""

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self._arrived = asyncio.Event()

    async def __call__(self, chunk: str) -> None:
        self.chunks.append(chunk)
        self._arrived.set()

    @property
    def text(self) -> str:
        """Everything received so far."""
        return "".join(self.chunks)

    async def wait_for(self, text: str) -> None:
        """Return once `text` has arrived; fail the test when it never does."""
        async with asyncio.timeout(WAIT_LIMIT_S):
            while text not in self.text:
                self._arrived.clear()
                await self._arrived.wait()


def process_is_gone(pid: int) -> bool:
    """Whether the process has exited (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == b"Z"


async def wait_until_gone(pid: int) -> bool:
    """Whether the process is gone, or goes within the wait limit (watched through a pidfd)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    loop = asyncio.get_running_loop()
    exited = loop.create_future()
    loop.add_reader(pidfd, lambda: exited.done() or exited.set_result(None))
    try:
        async with asyncio.timeout(WAIT_LIMIT_S):
            await exited
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    return True


def pids_in(text: str, label: str) -> list[int]:
    """The numbers printed after `label=` in a job's log."""
    return [int(word.split("=", 1)[1]) for word in text.split() if word.startswith(f"{label}=")]

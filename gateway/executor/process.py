"""Running a job in a fresh process: the executor's entry point, whatever the language."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.executor.bash import run_bash
from gateway.executor.outcome import LogSink, RunOutcome, RunRequest, Stopwatch
from gateway.executor.python3 import run_python3
from gateway.executor.sandbox import EXECUTION_ERROR

Runner = Callable[[RunRequest, LogSink], Awaitable[RunOutcome]]

RUNNERS: dict[str, Runner] = {"python3": run_python3, "bash": run_bash}
"""The languages the executor runs, each with its runner."""


async def run_fresh(request: RunRequest, log: LogSink) -> RunOutcome:
    """Run a job in a new child process; an unknown language is a failed outcome."""
    runner = RUNNERS.get(request.language)
    if runner is None:
        return Stopwatch().failure(
            EXECUTION_ERROR,
            f"language {request.language!r} of {request.script_path} is not supported; "
            f"the executor runs {', '.join(sorted(RUNNERS))}",
        )
    return await runner(request, log)

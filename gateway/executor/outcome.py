"""What the executor is asked to run, and what comes back.

A failed job's result has Windmill's error shape:
``{"error": {"name": "TimeoutError", "message": "job exceeded its timeout of 5s", "stack": "..."}}``
(``stack`` only when there is a traceback worth showing).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.executor.job_user import JobUser
from gateway.executor.limits import NO_LIMITS, JobLimits

LogSink = Callable[[str], Awaitable[None]]
"""Receives chunks of a job's combined stdout/stderr text while the job runs."""


@dataclass(frozen=True, slots=True)
class RunRequest:
    """One job for the executor: a script, its arguments and its limits."""

    language: str
    """``"python3"`` or ``"bash"``."""
    content: str
    script_path: str
    """The script's path, such as ``f/ops/hello``: named in errors, and the module name's source."""
    args: Mapping[str, Any]
    timeout_s: float
    memory_limit_mb: int | None
    env: Mapping[str, str]
    """The child's whole environment, besides PATH, HOME, LANG and TMPDIR set by the executor."""
    max_result_bytes: int
    run_preprocessor: bool = False
    """python3: run ``preprocessor(**args)`` first; the dict it returns is main's arguments."""
    arg_order: Sequence[str] = ()
    """bash: the order of the positional parameters (from the inferred schema)."""
    limits: JobLimits = NO_LIMITS
    """CPU time, open files, processes and file size of the job's process."""
    user: JobUser | None = None
    """The user the job's process switches to; None: the gateway's own user."""


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a job ended: its result (or error), peak memory and timing."""

    success: bool
    result: Any
    memory_peak_kb: int | None
    duration_ms: int
    started_at: datetime


def error_result(name: str, message: str, stack: str | None = None) -> dict[str, Any]:
    """Windmill's error shape for a failed job's result."""
    error: dict[str, Any] = {"name": name, "message": message}
    if stack is not None:
        error["stack"] = stack
    return {"error": error}


class Stopwatch:
    """Marks when a job started and turns how it ended into a `RunOutcome`."""

    __slots__ = ("_started", "started_at")

    def __init__(self) -> None:
        self.started_at = datetime.now(UTC)
        self._started = time.monotonic()

    def outcome(self, success: bool, result: Any, memory_peak_kb: int | None) -> RunOutcome:
        """The outcome of a job that ends now."""
        duration_ms = round((time.monotonic() - self._started) * 1000)
        return RunOutcome(success, result, memory_peak_kb, duration_ms, self.started_at)

    def failure(self, name: str, message: str, memory_peak_kb: int | None = None) -> RunOutcome:
        """The outcome of a job that fails now, with an error that has no stack."""
        return self.outcome(False, error_result(name, message), memory_peak_kb)

"""Warm workers: a python3 script imported once, then many jobs in the same process.

For scripts marked ``dedicated_worker``. A `WarmWorker` keeps one wrapper child (see
`gateway.executor.python3`) for one script version and runs its jobs one at a time; the outcome
and error shapes are those of a fresh job. What differs:

- module-level code runs once, when the child starts (its output goes to the first job's log);
- the job's environment is set in ``os.environ`` before each job; HOME and TMPDIR are the
  worker's directory, shared by its jobs;
- ``memory_peak_kb`` is the child's peak during the job (reset between jobs).

A child that times out, dies or is cancelled is killed, and the next job starts a new one. A
`WarmPool` holds up to `max_per_version` workers per script version, so that concurrent jobs of
one script run side by side. Only python3 has warm workers: the pool runs other languages in
fresh processes.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.executor.outcome import LogSink, RunOutcome, RunRequest, Stopwatch
from gateway.executor.process import run_fresh
from gateway.executor.python3 import PythonProcess

logger = logging.getLogger(__name__)

ScriptVersion = tuple[str, int | str]
"""A script's path and the hash of its version."""


class WarmWorker:
    """One long-lived python3 child for one script version, running one job at a time."""

    def __init__(self, script_path: str) -> None:
        self.script_path = script_path
        self._lock = asyncio.Lock()
        self._child: PythonProcess | None = None
        self._closed = False

    @property
    def busy(self) -> bool:
        """Whether a job runs (or waits to run) in this worker now."""
        return self._lock.locked()

    async def run(self, request: RunRequest, log: LogSink) -> RunOutcome:
        """Run one job, starting (or restarting) the child first when needed."""
        async with self._lock:
            if self._closed:
                raise RuntimeError(f"the warm worker of {self.script_path} is closed")
            watch = Stopwatch()
            if self._child is None or not self._child.serves(request):
                await self._stop_child()
                self._child = await PythonProcess.start(request, one_shot=False)
                logger.info(
                    "warm worker of %s started (pid %d)",
                    self.script_path,
                    self._child.pid,
                    extra={"action": "warm_worker_start"},
                )
            child = self._child
            try:
                return await child.execute(request, log, watch)
            finally:
                if not child.alive:
                    logger.info(
                        "warm worker of %s ended (pid %d); the next job starts a new one",
                        self.script_path,
                        child.pid,
                        extra={"action": "warm_worker_end"},
                    )
                    await self._stop_child()

    async def close(self) -> None:
        """Stop the child once the running job, if any, has ended. Idempotent."""
        async with self._lock:
            self._closed = True
            await self._stop_child()

    async def _stop_child(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            await child.close()


class WarmPool:
    """The warm workers of this gateway per script version, created on demand."""

    def __init__(self, max_per_version: int = 1) -> None:
        self._max_per_version = max(1, max_per_version)
        self._workers: dict[ScriptVersion, list[WarmWorker]] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._closed = False

    async def run(
        self, script_path: str, script_hash: int | str, request: RunRequest, log: LogSink
    ) -> RunOutcome:
        """Run a job in the warm worker of its script version (a fresh process if not python3)."""
        if request.language != "python3":
            return await run_fresh(request, log)
        if self._closed:
            raise RuntimeError("the warm worker pool is closed")
        version = (script_path, script_hash)
        workers = self._workers.get(version)
        if workers is None:
            self._retire_older_versions(script_path)
            workers = self._workers[version] = []
        return await self._pick(workers, script_path).run(request, log)

    def _pick(self, workers: list[WarmWorker], script_path: str) -> WarmWorker:
        # An idle worker if there is one; else a new one while under the limit; else queue on
        # the worker least likely to be busy long (the first).
        idle = next((worker for worker in workers if not worker.busy), None)
        if idle is not None:
            return idle
        if len(workers) < self._max_per_version:
            workers.append(WarmWorker(script_path))
            return workers[-1]
        return workers[0]

    async def close(self) -> None:
        """Close every worker, each once its running job has ended."""
        self._closed = True
        versions, self._workers = list(self._workers.values()), {}
        closing = [worker.close() for workers in versions for worker in workers]
        for failure in await asyncio.gather(*closing, *self._retiring, return_exceptions=True):
            if isinstance(failure, Exception):
                logger.warning(
                    "closing a warm worker failed",
                    exc_info=failure,
                    extra={"action": "warm_worker_close_failed"},
                )

    def _retire_older_versions(self, script_path: str) -> None:
        # A new version replaces the old one: its worker closes after the job it may be running.
        for version in [v for v in self._workers if v[0] == script_path]:
            for worker in self._workers.pop(version):
                task = asyncio.create_task(worker.close(), name=f"retire warm worker {version}")
                self._retiring.add(task)
                task.add_done_callback(self._retiring.discard)
            logger.info(
                "warm worker of %s retired: a new version arrived",
                script_path,
                extra={"action": "warm_worker_retire"},
            )

"""Recording finished jobs, several per transaction (group commit).

Jobs that end at about the same time are written together: their last logs, their completed
records, the next step of their flows and the revocation of their tokens, in one transaction.
A batch that fails is retried job by job, so one bad record cannot hold back the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from gateway.cancellation import raise_if_cancelling
from gateway.executor.job_logs import JobLogWriter
from gateway.jobs.complete import complete_job
from gateway.jobs.model import ClaimedJob, JobOutcome
from gateway.store import Store

logger = logging.getLogger(__name__)

RETRIES = 5


@dataclass(slots=True)
class _Finished:
    job: ClaimedJob
    outcome: JobOutcome
    logs: JobLogWriter
    recorded: asyncio.Future[None]


class CompletionWriter:
    """Writes the ends of jobs in batches of up to `max_batch`."""

    def __init__(self, store: Store, max_batch: int = 64) -> None:
        self._store = store
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Finished] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start writing; idempotent."""
        if self._task is None:
            self._task = asyncio.create_task(self._write_forever(), name="executor:completions")

    async def stop(self) -> None:
        """Stop writing (call once every job has been recorded)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def record(self, job: ClaimedJob, outcome: JobOutcome, logs: JobLogWriter) -> None:
        """Hand over a finished job; returns once its end is committed (or given up on)."""
        await logs.stop()
        recorded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Finished(job, outcome, logs, recorded))
        await asyncio.shield(recorded)

    async def _write_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            except Exception:
                raise_if_cancelling()
                logger.warning(
                    "recording %d finished jobs together failed; recording them one by one",
                    len(batch),
                    exc_info=True,
                    extra={"action": "completion_batch_failed"},
                )
                for finished in batch:
                    await self._write_alone(finished)
            for finished in batch:
                if not finished.recorded.done():
                    finished.recorded.set_result(None)

    async def _write(self, batch: list[_Finished]) -> None:
        async with self._store.transaction() as tx:
            for finished in batch:
                await finished.logs.finish(tx)
                await complete_job(tx, finished.job.id, finished.outcome)
            await tx.execute("delete_job_tokens", jobs=[f.job.id for f in batch])

    async def _write_alone(self, finished: _Finished) -> None:
        for attempt in range(RETRIES):
            try:
                await self._write([finished])
                return
            except Exception:
                logger.exception(
                    "recording the end of job %s failed (attempt %d of %d)",
                    finished.job.id,
                    attempt + 1,
                    RETRIES,
                    extra={"action": "completion_failed", "job": str(finished.job.id)},
                )
                await asyncio.sleep(0.2 * 2**attempt)

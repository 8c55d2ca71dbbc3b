"""A running job's output, written to `job_logs` in batches while the job runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from uuid import UUID

from gateway.store import Store, Transaction

logger = logging.getLogger(__name__)


class JobLogWriter:
    """Collects output chunks and appends them to `job_logs` every `interval_s`.

    Output past `max_bytes` is dropped with one notice, so a chatty job cannot fill the database.
    The last chunk is written by `finish`, inside the transaction that completes the job.
    """

    def __init__(
        self, store: Store, job_id: UUID, workspace_id: str, interval_s: float, max_bytes: int
    ) -> None:
        self._store = store
        self._job_id = job_id
        self._workspace_id = workspace_id
        self._interval_s = interval_s
        self._max_bytes = max_bytes
        self._pending: list[str] = []
        self._written = 0
        self._truncated = False
        self._flusher: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def write(self, chunk: str) -> None:
        """Accept a chunk of output (the executor's `LogSink`)."""
        if self._truncated:
            return
        room = self._max_bytes - self._written
        encoded = len(chunk.encode())
        if encoded > room:
            chunk = chunk.encode()[:room].decode(errors="ignore")
            chunk += f"\n[logs truncated: more than {self._max_bytes} bytes of output]\n"
            self._truncated = True
        self._written += min(encoded, room)
        self._pending.append(chunk)
        if self._flusher is None and not self._stopping.is_set():
            self._flusher = asyncio.create_task(self._flush_later(), name=f"logs:{self._job_id}")

    def note(self, line: str) -> None:
        """Add a line of the gateway's own (not the job's) to the logs."""
        self._pending.append(line if line.endswith("\n") else line + "\n")

    async def _flush_later(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval_s)
            if not self._pending or self._stopping.is_set():
                continue
            try:
                async with self._store.transaction() as tx:
                    await self._append(tx)
            except Exception:
                logger.exception("cannot write logs of job %s", self._job_id)

    async def _append(self, tx: Transaction) -> None:
        if not self._pending:
            return
        count = len(self._pending)
        await tx.execute(
            "append_job_logs",
            job_id=self._job_id,
            workspace_id=self._workspace_id,
            logs="".join(self._pending[:count]),
        )
        del self._pending[:count]

    async def stop(self) -> None:
        """Stop the periodic writes (the rest is written by `finish`)."""
        self._stopping.set()
        if self._flusher is not None:
            await self._flusher
            self._flusher = None

    async def finish(self, tx: Transaction) -> None:
        """Write what is left, in the caller's transaction."""
        await self.stop()
        await self._append(tx)

"""Jobs whose worker died: back to the queue, and failed after too many re-queues."""

from __future__ import annotations

import logging
from uuid import UUID

from gateway.executor.outcome import error_result
from gateway.jobs.complete import complete_job
from gateway.jobs.model import JobOutcome, JobStatus
from gateway.store import Transaction
from gateway.store.notify import JOBS_QUEUED

logger = logging.getLogger(__name__)


async def requeue_zombie_jobs(tx: Transaction, timeout_s: float, max_requeues: int) -> list[UUID]:
    """Re-queue running jobs whose heartbeat is older than `timeout_s`; return their ids."""
    rows = await tx.fetch_all("requeue_zombie_jobs", timeout_s=timeout_s)
    if rows:  # the dead worker's job tokens die with its run; the next claim issues new ones
        await tx.execute("delete_job_tokens", jobs=[row["id"] for row in rows])
    for row in rows:
        job_id: UUID = row["id"]
        await tx.execute("delete_runtime", id=job_id)
        counted = await tx.fetch_one("count_zombie_requeue", job_id=job_id)
        count = counted["counter"] if counted else 1
        if count > max_requeues:
            logger.warning(
                "job %s lost its worker %d times, failing it",
                job_id,
                count,
                extra={"action": "zombie_failed", "job": str(job_id)},
            )
            await complete_job(
                tx,
                job_id,
                JobOutcome(
                    status=JobStatus.FAILURE,
                    result=error_result(
                        "ZombieJob",
                        f"the worker running this job stopped responding {count} times; "
                        f"it was re-queued {max_requeues} times and is now failed",
                    ),
                    started_at=None,
                    duration_ms=0,
                ),
            )
        else:
            logger.warning(
                "job %s lost its worker, re-queued (%d/%d)",
                job_id,
                count,
                max_requeues,
                extra={"action": "zombie_requeued", "job": str(job_id)},
            )
    if rows:
        tx.notify(JOBS_QUEUED)
    return [row["id"] for row in rows]

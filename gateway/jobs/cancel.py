"""Cancel a queued or running job (and, for a flow, its steps)."""

from __future__ import annotations

from uuid import UUID

from gateway.errors import NotFound
from gateway.jobs.complete import complete_job
from gateway.jobs.model import canceled_outcome
from gateway.store import Transaction
from gateway.store.notify import JOB_CANCELED


async def cancel_job(
    tx: Transaction, workspace_id: str, job_id: UUID, canceled_by: str, reason: str | None
) -> bool:
    """Cancel `job_id`; True when it ended now, False when a running process was told to stop.

    A running job is stopped by the worker that holds it, which then records it as canceled.
    """
    requested = await tx.fetch_one(
        "request_cancel",
        id=job_id,
        workspace_id=workspace_id,
        canceled_by=canceled_by,
        reason=reason,
    )
    if requested is None:
        raise NotFound(f"no queued or running job {job_id} in workspace {workspace_id!r}")
    children = await tx.fetch_all("list_child_jobs_in_queue", parent_job=job_id)
    if children:
        ended = [
            await cancel_job(tx, workspace_id, child["id"], canceled_by, reason)
            for child in children
        ]
        return all(ended)
    if requested["running"] and await tx.fetch_one("get_runtime", id=job_id) is not None:
        tx.notify(JOB_CANCELED, str(job_id))
        return False
    await complete_job(tx, job_id, canceled_outcome(canceled_by, reason))
    return True

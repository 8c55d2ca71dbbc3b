"""Finish jobs: the completed record, then, for a step of a flow, the flow's next move.

Flows (single-step flows that wrap a script with its retry policy and error handler, and
Windmill flows) are advanced by the flow engine (`gateway.flows.engine`) in the transaction that
completes their step, so every transition happens exactly once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from gateway.jobs.model import JobOutcome, JobStatus, NewJob, canceled_outcome
from gateway.store import Json, Transaction
from gateway.store.notify import JOB_COMPLETED


async def complete_job(
    tx: Transaction,
    job_id: UUID,
    outcome: JobOutcome,
    *,
    retries: list[UUID] | None = None,
    flow_status: dict[str, Any] | None = None,
    advance_parent: bool = True,
) -> bool:
    """Write the final record of `job_id` and advance its parent flow; False if already done.

    `advance_parent=False` is for the flow engine completing a child it handles itself.
    """
    taken = await tx.fetch_one("take_queue_row", id=job_id)
    if taken is None:
        return False
    if outcome.status is JobStatus.CANCELED and taken["canceled_by"]:
        # Whoever asked for the cancel is recorded on the queue row.
        outcome = canceled_outcome(
            taken["canceled_by"],
            taken["canceled_reason"],
            started_at=outcome.started_at,
            duration_ms=outcome.duration_ms,
            worker=outcome.worker,
        )
    await tx.execute(
        "insert_completed",
        id=job_id,
        workspace_id=taken["workspace_id"],
        duration_ms=outcome.duration_ms,
        result=Json(outcome.result),
        canceled_by=outcome.canceled_by,
        canceled_reason=outcome.canceled_reason,
        flow_status=Json(flow_status) if flow_status is not None else None,
        started_at=outcome.started_at or taken["started_at"],
        memory_peak=outcome.memory_peak_kb,
        status=outcome.status.value,
        worker=outcome.worker,
        retries=retries,
    )
    tx.notify(JOB_COMPLETED, str(job_id))
    if taken["parent_job"] is not None and advance_parent:
        from gateway.flows.engine import advance_flow  # the engine builds on this module

        await advance_flow(tx, taken["parent_job"], job_id, taken["flow_step_id"], outcome)
    return True


def error_handler_args(
    flow: dict[str, Any], error_result: Any, extra: dict[str, Any] | None
) -> dict[str, Any]:
    """The error handler's arguments (Windmill's trigger error handler inputs)."""
    error = (
        error_result.get("error", error_result) if isinstance(error_result, dict) else error_result
    )
    started_at: datetime | None = flow["started_at"]
    trigger_path = (
        f"{flow['trigger_kind']}_trigger/{flow['trigger']}"
        if flow["trigger_kind"] and flow["trigger"]
        else None
    )
    args: dict[str, Any] = {
        "error": error,
        "path": flow["runnable_path"],
        "is_flow": False,
        "trigger_path": trigger_path,
        "workspace_id": flow["workspace_id"],
        "email": flow["permissioned_as_email"],
        "job_id": str(flow["id"]),
        "started_at": started_at.isoformat() if started_at else None,
    }
    args.update(extra or {})
    return args


def attempt_of_wrapper(flow: dict[str, Any]) -> NewJob:
    """The next attempt of a single-step flow: the wrapper's script, args and identity."""
    return NewJob(
        workspace_id=flow["workspace_id"],
        args=flow["args"] or {},
        permissioned_as=flow["permissioned_as"],
        permissioned_as_email=flow["permissioned_as_email"],
        created_by=flow["created_by"],
        runnable_path=flow["runnable_path"],
        trigger=flow["trigger"],
        trigger_kind=flow["trigger_kind"],
        priority=flow["priority"],
        timeout=flow["timeout"],
        apply_preprocessor=flow["preprocessed"] is False,
    )

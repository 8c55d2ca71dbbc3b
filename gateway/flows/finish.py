"""Finishing a flow job: an alert when a top flow fails, its failure module first when it has
one, then the job's completion (which advances its parent flow, if any).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from gateway.flows.script_jobs import queue_job
from gateway.flows.status import FAILURE_STEP, Ended, FlowRun, StepError, failure
from gateway.flows.transforms import args_of
from gateway.jobs.complete import complete_job, error_handler_args
from gateway.jobs.model import JobOutcome, JobStatus
from gateway.store.values import utc_now


async def conclude(run: FlowRun, ended: Ended | None) -> None:
    """End the flow job as `ended` says (None: it goes on); a failure runs its failure module."""
    if ended is None:
        return
    if ended.status is JobStatus.FAILURE:
        if run.row["parent_job"] is None:
            await _alert(run, ended.result)
        if await start_failure_module(run, ended.result):
            return
    await complete(run, ended)


async def complete(run: FlowRun, ended: Ended, *, advance_parent: bool = True) -> None:
    """Complete the flow job with the status and result of `ended`."""
    started: datetime | None = run.row["started_at"]
    duration_ms = int((utc_now() - started).total_seconds() * 1000) if started else 0
    failed = [UUID(j) for j in run.status.get("retry", {}).get("failed_jobs", [])]
    await complete_job(
        run.tx,
        run.id,
        JobOutcome(
            status=ended.status,
            result=ended.result,
            started_at=started,
            duration_ms=duration_ms,
        ),
        retries=failed or None,
        flow_status=run.status,
        advance_parent=advance_parent,
    )


async def start_failure_module(run: FlowRun, error: Any) -> bool:
    """Start the failure module once; False when there is none (or it ran already)."""
    module = run.flow.failure_module
    entry = run.status.get("failure_module")
    if module is None or entry is None or entry["type"] != "WaitingForPriorSteps":
        return False
    run.status["error_result"] = error
    detail = error.get("error", error) if isinstance(error, dict) else error
    if run.row["kind"] == "singlestepflow":
        args = error_handler_args(run.row, error, dict(module.extra_args))
    else:
        scope = {**run.scope(), "error": detail, "previous_result": detail}
        try:
            args = {
                "error": detail,
                "flow_input": run.flow_input,
                **(await args_of(module, scope)),
            }
        except StepError as problem:
            entry.update(type="Failure", result=failure(str(problem)))
            return False
    if module.type == "identity":
        entry.update(type="Success", result=detail)
        return False
    try:
        job_id = await queue_job(
            run, module, args, step_id=FAILURE_STEP, step=len(run.flow.modules), delay_s=0.0
        )
    except StepError as problem:
        entry.update(type="Failure", result=failure(str(problem)))
        return False
    entry.update(type="InProgress", job=str(job_id))
    await run.save()
    return True


async def _alert(run: FlowRun, error: Any) -> None:
    await run.tx.execute(
        "insert_alert",
        alert_type="job_failed",
        message=(
            f"Job {run.id} ({run.row['runnable_path']}) failed after "
            f"{run.status['retry']['fail_count']} attempt(s): {_message(error)}"
        ),
        workspace_id=run.row["workspace_id"],
        resource=run.row["runnable_path"],
    )


def _message(result: Any) -> str:
    if isinstance(result, dict) and isinstance(result.get("error"), dict):
        error = result["error"]
        return f"{error.get('name', 'Error')}: {error.get('message', '')}"
    return str(result)[:500]

"""Finish jobs: the completed record, and for an attempt of a wrapped script, what comes next.

An attempt of a single-step flow either ends the wrapper (success, or failure with no handler
left), schedules the next attempt after the retry delay, or starts the error handler once.
Every step happens in the transaction that completes the attempt, so it happens exactly once.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime
from typing import Any
from uuid import UUID

from gateway.jobs.enqueue import insert_job, new_job_id
from gateway.jobs.model import JobOutcome, JobStatus, NewJob, canceled_outcome
from gateway.jobs.retry import RetryPolicy
from gateway.scripts import latest_script, parse_hash, script_by_hash
from gateway.store import Json, Transaction
from gateway.store.notify import JOB_COMPLETED
from gateway.store.values import utc_now

logger = logging.getLogger(__name__)


async def complete_job(
    tx: Transaction,
    job_id: UUID,
    outcome: JobOutcome,
    *,
    retries: list[UUID] | None = None,
    flow_status: dict[str, Any] | None = None,
) -> bool:
    """Write the final record of `job_id` and advance its parent flow; False if already done."""
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
    if taken["parent_job"] is not None:
        await _advance_flow(tx, taken["parent_job"], job_id, taken["flow_step_id"], outcome)
    return True


async def _advance_flow(
    tx: Transaction, flow_id: UUID, child_id: UUID, step_id: str | None, outcome: JobOutcome
) -> None:
    flow = await tx.fetch_one("get_flow_job", id=flow_id)
    if flow is None:
        return  # the wrapper was canceled or completed already
    status: dict[str, Any] = flow["flow_status"]
    if step_id == "failure":
        status["failure_module"].update(type="Success" if _ok(outcome) else "Failure")
        status["failure_module"]["result"] = outcome.result
        await _finish_flow(
            tx, flow, status=status, final=JobStatus.FAILURE, result=status["error_result"]
        )
        return
    if outcome.status in (JobStatus.SUCCESS, JobStatus.CANCELED):
        status["modules"][0].update(type=_module_state(outcome), job=str(child_id))
        await _finish_flow(
            tx, flow, status=status, final=outcome.status, result=outcome.result, last=outcome
        )
        return

    retry_state = status["retry"]
    failed_before = int(retry_state["fail_count"])
    retry_state["failed_jobs"].append(str(child_id))
    retry_state["fail_count"] = failed_before + 1
    module = flow["raw_flow"]["modules"][0]
    policy = RetryPolicy.parse(module.get("retry"))
    delay = _next_delay(policy, failed_before, outcome.result, flow["args"])
    if delay is not None:
        next_attempt = new_job_id()
        await insert_job(
            tx,
            next_attempt,
            attempt_of_wrapper(flow),
            await script_by_hash(tx, flow["workspace_id"], parse_hash(module["value"]["hash"])),
            parent=flow_id,
            step_id="a",
            delay_s=delay,
        )
        status["modules"][0].update(type="InProgress", job=str(next_attempt))
        await tx.execute("set_job_status", id=flow_id, flow_status=Json(status))
        logger.info(
            "attempt %d of %s failed, retrying in %.2fs",
            failed_before + 1,
            flow["runnable_path"],
            delay,
            extra={"action": "job_retry", "job": str(flow_id)},
        )
        return

    status["modules"][0].update(type="Failure", job=str(child_id))
    await tx.execute(
        "insert_alert",
        alert_type="job_failed",
        message=(
            f"Job {flow_id} ({flow['runnable_path']}) failed after "
            f"{retry_state['fail_count']} attempt(s): {_error_message(outcome.result)}"
        ),
        workspace_id=flow["workspace_id"],
        resource=flow["runnable_path"],
    )
    handler = flow["raw_flow"].get("failure_module")
    if handler is None:
        await _finish_flow(tx, flow, status=status, final=JobStatus.FAILURE, result=outcome.result)
        return
    handler_job = new_job_id()
    handler_path = handler["value"]["path"]
    await insert_job(
        tx,
        handler_job,
        NewJob(
            workspace_id=flow["workspace_id"],
            args=error_handler_args(flow, outcome.result, handler["value"].get("extra_args")),
            permissioned_as=flow["permissioned_as"],
            permissioned_as_email=flow["permissioned_as_email"],
            created_by=flow["created_by"],
            runnable_path=handler_path,
            trigger=flow["trigger"],
            trigger_kind=flow["trigger_kind"],
        ),
        await latest_script(tx, flow["workspace_id"], handler_path),
        parent=flow_id,
        step_id="failure",
    )
    status["failure_module"].update(type="InProgress", job=str(handler_job))
    status["error_result"] = outcome.result
    await tx.execute("set_job_status", id=flow_id, flow_status=Json(status))


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


def _next_delay(
    policy: RetryPolicy | None, failed_before: int, error_result: Any, flow_input: Any
) -> float | None:
    if policy is None or not policy.should_retry(failed_before, error_result, flow_input):
        return None
    return policy.delay_for(failed_before, random.Random())


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


async def _finish_flow(
    tx: Transaction,
    flow: dict[str, Any],
    *,
    status: dict[str, Any],
    final: JobStatus,
    result: Any,
    last: JobOutcome | None = None,
) -> None:
    started: datetime | None = flow["started_at"]
    duration_ms = int((utc_now() - started).total_seconds() * 1000) if started else 0
    failed = [UUID(j) for j in status.get("retry", {}).get("failed_jobs", [])]
    await complete_job(
        tx,
        flow["id"],
        JobOutcome(
            status=final,
            result=result,
            started_at=started,
            duration_ms=duration_ms,
            canceled_by=last.canceled_by if last else None,
            canceled_reason=last.canceled_reason if last else None,
        ),
        retries=failed or None,
        flow_status=status,
    )


def _ok(outcome: JobOutcome) -> bool:
    return outcome.status is JobStatus.SUCCESS


def _module_state(outcome: JobOutcome) -> str:
    return {"success": "Success", "canceled": "Failure"}.get(outcome.status.value, "Failure")


def _error_message(result: Any) -> str:
    if isinstance(result, dict) and isinstance(result.get("error"), dict):
        error = result["error"]
        return f"{error.get('name', 'Error')}: {error.get('message', '')}"
    return str(result)[:500]

"""Jobs parked by a suspended trigger: resume them (reassigned to the trigger's current target)
or cancel them.

A parked job created after the trigger's last edit gets its runnable kind back and becomes due
now. One created before the edit was shaped for an older target: it is removed and pushed again
with its stored args under the trigger's current script, retry policy and error handler (or the
trigger's current flow).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from gateway.errors import InvalidInput, NotFound
from gateway.jobs.cancel import cancel_job
from gateway.jobs.complete import attempt_of_wrapper
from gateway.jobs.enqueue import enqueue, insert_job
from gateway.jobs.job_ids import new_job_id
from gateway.jobs.model import NewJob
from gateway.listeners.lease import TriggerRef
from gateway.scripts import parse_hash, script_by_hash
from gateway.store import Json, Row, Transaction
from gateway.store.notify import JOBS_QUEUED
from gateway.store.trigger_tables import TRIGGER_TABLES
from gateway.triggers.runnables import RunnableShapes, TriggerTarget


async def resume_parked_jobs(
    tx: Transaction,
    workspace_id: str,
    kind: str,
    trigger_path: str,
    job_ids: Sequence[UUID] | None = None,
) -> int:
    """Release or re-push the parked jobs of a trigger; how many were reassigned."""
    trigger = await _trigger_row(tx, workspace_id, kind, trigger_path)
    target = TriggerTarget.from_row(TriggerRef(kind, workspace_id, trigger_path), trigger)
    edited_at: datetime = trigger["edited_at"]
    parked = await _parked(tx, workspace_id, kind, trigger_path, job_ids)
    for job in parked:
        if job["created_at"] > edited_at:
            await _release(tx, job)
        else:
            await _repush(tx, job, target)
    if parked:
        tx.notify(JOBS_QUEUED)
    return len(parked)


async def cancel_parked_jobs(
    tx: Transaction,
    workspace_id: str,
    kind: str,
    trigger_path: str,
    *,
    canceled_by: str,
    job_ids: Sequence[UUID] | None = None,
) -> int:
    """Cancel the parked jobs of a trigger; how many were canceled."""
    await _trigger_row(tx, workspace_id, kind, trigger_path)
    parked = await _parked(tx, workspace_id, kind, trigger_path, job_ids)
    for job in parked:
        await cancel_job(
            tx, workspace_id, job["id"], canceled_by, "suspended trigger jobs canceled"
        )
    return len(parked)


async def _trigger_row(tx: Transaction, workspace_id: str, kind: str, path: str) -> Row:
    if kind not in TRIGGER_TABLES:
        raise InvalidInput("trigger_kind", f"{kind} triggers do not support job reassignment")
    row = await tx.fetch_one(f"get_{kind}_trigger", workspace_id=workspace_id, path=path)
    if row is None:
        raise NotFound(f"{kind} trigger not found at path {path!r}")
    return row


async def _parked(
    tx: Transaction,
    workspace_id: str,
    kind: str,
    trigger_path: str,
    job_ids: Sequence[UUID] | None,
) -> list[Row]:
    return await tx.fetch_all(
        "list_parked_jobs",
        workspace_id=workspace_id,
        trigger_kind=kind,
        trigger=trigger_path,
        job_ids=list(job_ids) if job_ids else None,
    )


async def _release(tx: Transaction, job: Row) -> None:
    kind = str(job["kind"]).removeprefix("unassigned_")
    await tx.execute("set_job_kind", id=job["id"], kind=kind)
    flow_job = kind in ("singlestepflow", "flow")
    await tx.execute("release_parked_job", id=job["id"], running=flow_job)
    if kind == "flow":
        from gateway.flows.start import resume_flow  # the engine builds on the jobs package

        await resume_flow(tx, job["id"])
        return
    if kind != "singlestepflow":
        return
    flow: dict[str, Any] = job["raw_flow"]
    module = flow["modules"][0]
    script = await script_by_hash(tx, job["workspace_id"], parse_hash(module["value"]["hash"]))
    attempt = new_job_id()
    wrapper = await tx.fetch_one("get_flow_job", id=job["id"])
    assert wrapper is not None
    await insert_job(
        tx,
        attempt,
        attempt_of_wrapper(wrapper),
        script,
        parent=job["id"],
        step_id="a",
        delay_s=0.0,
    )
    status = wrapper["flow_status"]
    status["modules"][0] = {"id": "a", "type": "InProgress", "job": str(attempt)}
    await tx.execute("set_job_status", id=job["id"], flow_status=Json(status))


async def _repush(tx: Transaction, job: Row, target: TriggerTarget) -> None:
    workspace_id = target.trigger.workspace_id
    runnable = await RunnableShapes().resolve_target(
        tx, workspace_id, target.script_path, is_flow=target.is_flow
    )
    await tx.execute("delete_job", id=job["id"])
    replacement = NewJob(
        workspace_id=workspace_id,
        args=job["args"] or {},
        permissioned_as=target.permissioned_as,
        permissioned_as_email=target.email,
        created_by=target.created_by,
        runnable_path=runnable.path,
        flow_value=runnable.flow_value,
        flow_version=runnable.flow_version,
        trigger=target.trigger.path,
        trigger_kind=target.trigger.kind,
        retry=None if target.is_flow else target.retry,
        error_handler=None if target.is_flow else target.error_handler,
        apply_preprocessor=runnable.shape.has_preprocessor,
    )
    (queued,) = await enqueue(tx, [replacement])
    await tx.execute("move_dedup_keys", new_job_id=queued.job_id, old_job_id=job["id"])

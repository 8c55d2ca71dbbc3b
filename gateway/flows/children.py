"""Writing the child jobs of a flow: script steps, inline scripts, and flow nodes.

A flow node is a child flow job: a sub-flow by path, one iteration of a for-loop, or one branch.
It has its own `flow_status`; its `context` holds the results of the steps around it that its
expressions may read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from gateway.jobs.enqueue import insert_records, job_record
from gateway.jobs.job_ids import new_job_id
from gateway.jobs.model import NewJob
from gateway.scripts import Script
from gateway.store import Json, Transaction
from gateway.store.notify import JOBS_QUEUED


def identity_of(flow: Mapping[str, Any], args: Mapping[str, Any], **fields: Any) -> NewJob:
    """A job that runs as, and for the same trigger as, the flow job `flow`."""
    return NewJob(
        workspace_id=flow["workspace_id"],
        args=args,
        permissioned_as=flow["permissioned_as"],
        permissioned_as_email=flow["permissioned_as_email"],
        created_by=flow["created_by"],
        trigger=flow["trigger"],
        trigger_kind=flow["trigger_kind"],
        priority=flow["priority"],
        **fields,
    )


def root_of(flow: Mapping[str, Any]) -> UUID:
    """The top flow job of the tree `flow` belongs to."""
    root = flow["root_job"] or flow["id"]
    return root if isinstance(root, UUID) else UUID(str(root))


async def insert_step(
    tx: Transaction,
    flow: Mapping[str, Any],
    *,
    step_id: str,
    step: int,
    job: NewJob,
    script: Script | None,
    delay_s: float,
) -> UUID:
    """Queue one runnable step of `flow` (a script version or inline code); its job id."""
    job_id = new_job_id()
    record = job_record(job_id, job, script, parent=flow["id"], step_id=step_id, delay_s=delay_s)
    record.update(root_job=str(root_of(flow)), flow_step=step)
    await insert_records(tx, [record])
    tx.notify(JOBS_QUEUED)
    return job_id


async def insert_node(
    tx: Transaction,
    flow: Mapping[str, Any],
    *,
    step_id: str,
    step: int,
    value: Mapping[str, Any],
    args: Mapping[str, Any],
    status: dict[str, Any],
    path: str | None = None,
    version: int | None = None,
) -> UUID:
    """Insert a child flow job running `value` (its first steps are the caller's to start)."""
    node_id = new_job_id()
    record = job_record(
        node_id,
        identity_of(flow, args, runnable_path=path or flow["runnable_path"]),
        None,
        parent=flow["id"],
        step_id=step_id,
        delay_s=0.0,
    )
    record.update(
        root_job=str(root_of(flow)),
        flow_step=step,
        kind="flow",
        tag="flow",
        raw_flow=dict(value),
        runnable_id=version if path else flow["runnable_id"],
        script_lang=None,
        running=True,
    )
    await insert_records(tx, [record])
    await tx.execute("insert_job_status", id=node_id, flow_status=Json(status))
    return node_id

"""Put jobs in the queue: a batch in the caller's transaction, deduplicated by event key.

A script job with a retry policy or an error handler is wrapped, as Windmill does, in a
single-step flow (`singlestepflow`): the wrapper is the job callers see; each attempt is a child
job, and the error handler is the wrapper's failure module.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from gateway.jobs.model import Enqueued, NewJob
from gateway.scripts import Script, latest_script, script_by_hash
from gateway.store import Json, Transaction
from gateway.store.notify import JOBS_QUEUED

SUSPENDED_DELAY_S = 30 * 24 * 3600.0
DEFAULT_TAGS = {"python3": "python3", "bash": "bash"}


def new_job_id() -> UUID:
    """A fresh job id."""
    return uuid.uuid4()


async def enqueue(tx: Transaction, jobs: Sequence[NewJob]) -> list[Enqueued]:
    """Enqueue `jobs` inside `tx`; a job whose dedup key was seen returns the earlier job."""
    scripts: dict[tuple[str, str | int], Script] = {}
    results: list[Enqueued] = []
    for job in jobs:
        job_id = new_job_id()
        if job.dedup_key is not None:
            claimed = await tx.fetch_one(
                "claim_dedup_key",
                workspace_id=job.workspace_id,
                dedup_key=job.dedup_key,
                job_id=job_id,
            )
            if claimed is None:
                earlier = await tx.fetch_one(
                    "get_dedup_job", workspace_id=job.workspace_id, dedup_key=job.dedup_key
                )
                assert earlier is not None
                results.append(Enqueued(earlier["job_id"], created=False))
                continue
        script = await _resolve_script(tx, job, scripts)
        if script is not None and (job.retry is not None or job.error_handler is not None):
            await _insert_wrapped(tx, job_id, job, script)
        else:
            await insert_job(tx, job_id, job, script)
        results.append(Enqueued(job_id, created=True))
    if any(r.created for r in results):
        tx.notify(JOBS_QUEUED)
    return results


async def _resolve_script(
    tx: Transaction, job: NewJob, cache: dict[tuple[str, str | int], Script]
) -> Script | None:
    if job.raw_code is not None:
        return None
    key: tuple[str, str | int]
    if job.script_hash is not None:
        key = (job.workspace_id, job.script_hash)
        if key not in cache:
            cache[key] = await script_by_hash(tx, job.workspace_id, job.script_hash)
    else:
        assert job.runnable_path is not None, "a job names a script path, a hash or inline code"
        key = (job.workspace_id, job.runnable_path)
        if key not in cache:
            cache[key] = await latest_script(tx, job.workspace_id, job.runnable_path)
    return cache[key]


async def insert_job(
    tx: Transaction,
    job_id: UUID,
    job: NewJob,
    script: Script | None,
    *,
    parent: UUID | None = None,
    step_id: str | None = None,
    delay_s: float | None = None,
) -> None:
    """Insert one runnable job (a script version, or inline code as a preview)."""
    language: str | None
    path: str | None
    if script is not None:
        kind, language, path, version = "script", script.language, script.path, script.hash
        tag = script.tag or DEFAULT_TAGS.get(script.language, "other")
        timeout = job.timeout if job.timeout is not None else script.timeout
        priority = job.priority if job.priority is not None else script.priority
        preprocess = job.apply_preprocessor and script.has_preprocessor
    else:
        kind, language, path, version = "preview", job.language, job.runnable_path, None
        tag = DEFAULT_TAGS.get(language or "", "other")
        timeout, priority, preprocess = job.timeout, job.priority, job.apply_preprocessor
    wait = job.delay_s if delay_s is None else delay_s
    if job.suspended and parent is None:
        kind, wait = f"unassigned_{kind}", SUSPENDED_DELAY_S
    await tx.execute(
        "insert_job",
        id=job_id,
        raw_code=job.raw_code,
        raw_flow=None,
        tag=tag,
        workspace_id=job.workspace_id,
        created_by=job.created_by,
        permissioned_as=job.permissioned_as,
        permissioned_as_email=job.permissioned_as_email,
        kind=kind,
        runnable_id=version,
        runnable_path=path,
        parent_job=parent,
        root_job=parent,
        script_lang=language,
        flow_step=0 if step_id else None,
        flow_step_id=step_id,
        trigger=job.trigger,
        trigger_kind=job.trigger_kind,
        timeout=timeout,
        priority=priority,
        preprocessed=False if preprocess else None,
        args=dict(job.args),
        labels=list(job.labels) or None,
    )
    await tx.execute(
        "insert_queue_row",
        id=job_id,
        workspace_id=job.workspace_id,
        delay_s=wait,
        running=False,
        tag=tag,
        priority=priority,
    )


def single_step_flow(job: NewJob, script: Script) -> dict[str, Any]:
    """The flow definition that wraps one script with its retry policy and error handler."""
    module: dict[str, Any] = {
        "id": "a",
        "value": {
            "type": "script",
            "path": script.path,
            "hash": script.hash_hex,
            "input_transforms": {},
        },
    }
    if job.retry is not None:
        module["retry"] = job.retry.to_json()
    flow: dict[str, Any] = {"modules": [module]}
    if job.error_handler is not None:
        flow["failure_module"] = {
            "id": "failure",
            "value": {
                "type": "script",
                "path": job.error_handler.path,
                "input_transforms": {},
                "extra_args": dict(job.error_handler.args),
            },
        }
    return flow


async def _insert_wrapped(tx: Transaction, wrapper_id: UUID, job: NewJob, script: Script) -> None:
    first_attempt = new_job_id()
    flow = single_step_flow(job, script)
    kind = "unassigned_singlestepflow" if job.suspended else "singlestepflow"
    await tx.execute(
        "insert_job",
        id=wrapper_id,
        raw_code=None,
        raw_flow=flow,
        tag="flow",
        workspace_id=job.workspace_id,
        created_by=job.created_by,
        permissioned_as=job.permissioned_as,
        permissioned_as_email=job.permissioned_as_email,
        kind=kind,
        runnable_id=script.hash,
        runnable_path=script.path,
        parent_job=None,
        root_job=None,
        script_lang=script.language,
        flow_step=None,
        flow_step_id=None,
        trigger=job.trigger,
        trigger_kind=job.trigger_kind,
        timeout=job.timeout,
        priority=job.priority,
        preprocessed=False if job.apply_preprocessor and script.has_preprocessor else None,
        args=dict(job.args),
        labels=list(job.labels) or None,
    )
    await tx.execute(
        "insert_queue_row",
        id=wrapper_id,
        workspace_id=job.workspace_id,
        delay_s=SUSPENDED_DELAY_S if job.suspended else job.delay_s,
        running=not job.suspended,
        tag="flow",
        priority=job.priority,
    )
    module_status: dict[str, Any] = {"id": "a", "type": "WaitingForPriorSteps"}
    if not job.suspended:
        module_status = {"id": "a", "type": "InProgress", "job": str(first_attempt)}
    status: dict[str, Any] = {
        "step": 0,
        "modules": [module_status],
        "retry": {"fail_count": 0, "failed_jobs": []},
    }
    if job.error_handler is not None:
        status["failure_module"] = {"id": "failure", "type": "WaitingForPriorSteps"}
    await tx.execute("insert_job_status", id=wrapper_id, flow_status=Json(status))
    if not job.suspended:
        await insert_job(tx, first_attempt, job, script, parent=wrapper_id, step_id="a")

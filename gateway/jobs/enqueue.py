"""Put jobs in the queue: a batch in the caller's transaction, deduplicated by event key.

A script job with a retry policy or an error handler is wrapped, as Windmill does, in a
single-step flow (`singlestepflow`): the wrapper is the job callers see; each attempt is a child
job, and the error handler is the wrapper's failure module.

A `JobBatch` (the events of one trigger: jobs that differ only in their args and dedup keys) has
a fast path, `enqueue_batch`: plain script jobs are written in bulk with what they share encoded
once, and their dedup keys copied in one go, all new as they nearly always are (a redelivery
falls back to the claim that tells new keys from seen ones).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from gateway.jobs.bulk_insert import (
    COPY_MIN_RECORDS,
    copy_dedup_keys,
    copy_records,
    copy_similar_jobs,
)
from gateway.jobs.job_ids import new_job_id, new_job_ids
from gateway.jobs.model import Enqueued, NewJob
from gateway.scripts import Script, latest_script, script_by_hash
from gateway.store import CopyingTransaction, Json, Transaction
from gateway.store.notify import JOBS_QUEUED

SUSPENDED_DELAY_S = 30 * 24 * 3600.0
DEFAULT_TAGS = {"python3": "python3", "bash": "bash"}


async def enqueue(
    tx: Transaction, jobs: Sequence[NewJob], known: Sequence[Script] = ()
) -> list[Enqueued]:
    """Enqueue `jobs` inside `tx`; a job whose dedup key was seen returns the earlier job.

    Plain jobs are written with one statement per table for the whole batch; jobs wrapped for a
    retry policy or an error handler are written one by one. `known` are script versions the
    caller has read already (jobs pinned to them by hash need no second read).
    """
    ids = new_job_ids(len(jobs))
    earlier = await _seen_before(tx, [(job.workspace_id, job.dedup_key) for job in jobs], ids)
    scripts: dict[tuple[str, str | int], Script] = {(s.workspace_id, s.hash): s for s in known}
    plain: list[JobRecord] = []
    results: list[Enqueued] = []
    for job, job_id in zip(jobs, ids, strict=True):
        key = (job.workspace_id, job.dedup_key)
        if job.dedup_key is not None and earlier.get(key, job_id) != job_id:
            results.append(Enqueued(earlier[key], created=False))
            continue
        if job.flow_value is not None:
            from gateway.flows.start import start_flow  # the engine builds on this module

            await start_flow(tx, job_id, job)
            results.append(Enqueued(job_id, created=True))
            continue
        script = await _resolve_script(tx, job, scripts)
        if script is not None and (job.retry is not None or job.error_handler is not None):
            await _insert_wrapped(tx, job_id, job, script)
        else:
            plain.append(job_record(job_id, job, script))
        results.append(Enqueued(job_id, created=True))
    await insert_records(tx, plain)
    if any(r.created for r in results):
        tx.notify(JOBS_QUEUED)
    return results


@dataclass(frozen=True, slots=True)
class JobBatch:
    """Jobs that differ only in their args and dedup keys: `template` (its own args and dedup
    key unused) with, per job, its args, their JSON text and its dedup key."""

    template: NewJob
    args: Sequence[Mapping[str, Any]]
    args_json: Sequence[str]
    dedup_keys: Sequence[str | None]

    def __len__(self) -> int:
        return len(self.args)

    @property
    def jobs(self) -> tuple[NewJob, ...]:
        """The jobs one by one."""
        return tuple(
            dataclasses.replace(self.template, args=args, dedup_key=key)
            for args, key in zip(self.args, self.dedup_keys, strict=True)
        )


async def enqueue_batch(
    tx: Transaction, batch: JobBatch, known: Sequence[Script] = ()
) -> list[Enqueued]:
    """Enqueue the jobs of `batch` inside `tx`, as `enqueue` does.

    Plain script jobs of a bulk-writing transaction take the fast path (see the module
    docstring); any other batch goes through `enqueue`.
    """
    template = batch.template
    if (
        not isinstance(tx, CopyingTransaction)
        or len(batch) < COPY_MIN_RECORDS
        or template.flow_value is not None
        or template.raw_code is not None
        or template.retry is not None
        or template.error_handler is not None
    ):
        return await enqueue(tx, batch.jobs, known)
    scripts: dict[tuple[str, str | int], Script] = {(s.workspace_id, s.hash): s for s in known}
    script = await _resolve_script(tx, template, scripts)
    assert script is not None, "a job without inline code runs a script"
    ids = new_job_ids(len(batch))
    texts = [str(job_id) for job_id in ids]
    earlier = await _claim_keys(tx, template.workspace_id, batch.dedup_keys, ids, texts)
    results: list[Enqueued] = []
    created: list[tuple[str, str]] = []
    for job_id, text, key, args in zip(ids, texts, batch.dedup_keys, batch.args_json, strict=True):
        first = job_id if key is None else earlier[key]
        is_new = first is job_id  # the very id drawn for this job: its key was new
        results.append(Enqueued(first, created=is_new))
        if is_new:
            created.append((text, args))
    if created:
        await copy_similar_jobs(tx, job_record(ids[0], template, script), created)
        tx.notify(JOBS_QUEUED)
    return results


async def _claim_keys(
    tx: CopyingTransaction,
    workspace_id: str,
    keys: Sequence[str | None],
    ids: Sequence[UUID],
    texts: Sequence[str],
) -> dict[str, UUID]:
    """The job each dedup key of `workspace_id` maps to: an earlier job's, or the new id (given
    as `ids` and as `texts`) it claims now, copied in one go while no key was seen before."""
    first: dict[str, int] = {}
    for position, key in enumerate(keys):
        if key is not None:
            first.setdefault(key, position)
    claims = [(key, texts[position]) for key, position in first.items()]
    if not first or await copy_dedup_keys(tx, workspace_id, claims):
        return {key: ids[position] for key, position in first.items()}
    earlier = await _seen_before(tx, [(workspace_id, key) for key in keys], ids)
    return {key: job_id for (_, key), job_id in earlier.items() if key is not None}


async def _seen_before(
    tx: Transaction, keys: Sequence[tuple[str, str | None]], ids: Sequence[UUID]
) -> dict[tuple[str, str | None], UUID]:
    """The job each (workspace, dedup key) maps to: an earlier job's, or the new id it claims
    now."""
    first: dict[tuple[str, str | None], UUID] = {}
    for (workspace_id, dedup_key), job_id in zip(keys, ids, strict=True):
        if dedup_key is not None:
            first.setdefault((workspace_id, dedup_key), job_id)
    if not first:
        return {}
    claims = [
        {"workspace_id": ws, "dedup_key": key, "job_id": str(job_id)}
        for (ws, key), job_id in first.items()
    ]
    claimed = await tx.fetch_all("claim_dedup_keys", keys=Json(claims))
    new = {(row["workspace_id"], row["dedup_key"]) for row in claimed}
    if len(new) < len(first):
        seen = [k for k in claims if (k["workspace_id"], k["dedup_key"]) not in new]
        for row in await tx.fetch_all("get_dedup_jobs", keys=Json(seen)):
            first[(row["workspace_id"], row["dedup_key"])] = UUID(str(row["job_id"]))
    return first


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


JobRecord = dict[str, Any]
"""One new job as the batched insert statements read it."""


def job_record(
    job_id: UUID,
    job: NewJob,
    script: Script | None,
    *,
    parent: UUID | None = None,
    step_id: str | None = None,
    delay_s: float | None = None,
) -> JobRecord:
    """The record of one runnable job: a script version, or inline code as a preview."""
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
    return {
        "id": str(job_id),
        "raw_code": job.raw_code,
        "raw_flow": None,
        "tag": tag,
        "workspace_id": job.workspace_id,
        "created_by": job.created_by,
        "permissioned_as": job.permissioned_as,
        "permissioned_as_email": job.permissioned_as_email,
        "kind": kind,
        "runnable_id": version,
        "runnable_path": path,
        "parent_job": str(parent) if parent else None,
        "root_job": str(parent) if parent else None,
        "script_lang": language,
        "flow_step": 0 if step_id else None,
        "flow_step_id": step_id,
        "trigger": job.trigger,
        "trigger_kind": job.trigger_kind,
        "timeout": timeout,
        "priority": priority,
        "preprocessed": False if preprocess else None,
        "args": dict(job.args),
        "labels": list(job.labels) or None,
        "delay_s": wait,
        "running": False,
    }


async def insert_records(tx: Transaction, records: Sequence[JobRecord]) -> None:
    """Insert jobs and their queue rows: one statement per table, whatever the count."""
    if isinstance(tx, CopyingTransaction) and len(records) >= COPY_MIN_RECORDS:
        await copy_records(tx, records)
    elif records:
        await tx.execute("insert_jobs", jobs=Json(list(records)))
        await tx.execute("insert_queue_rows", jobs=Json(list(records)))


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
    """Insert one runnable job (a flow step, a retry, a handler, a re-pushed job)."""
    record = job_record(job_id, job, script, parent=parent, step_id=step_id, delay_s=delay_s)
    await insert_records(tx, [record])


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
    wrapper = job_record(wrapper_id, job, script)
    wrapper.update(
        raw_flow=flow,
        tag="flow",
        kind="unassigned_singlestepflow" if job.suspended else "singlestepflow",
        flow_step=None,
        flow_step_id=None,
        timeout=job.timeout,
        priority=job.priority,
        preprocessed=False if job.apply_preprocessor and script.has_preprocessor else None,
        running=not job.suspended,
    )
    await insert_records(tx, [wrapper])
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

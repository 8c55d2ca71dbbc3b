"""Read jobs back, in the JSON shape Windmill's API and clients use."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from gateway.errors import NotFound
from gateway.store import Row, Store, fetch_all, fetch_one
from gateway.store.notify import JOB_COMPLETED

MAX_PER_PAGE = 1000


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Windmill's job list filters; None means "any"."""

    trigger_kind: str | None = None
    trigger: str | None = None
    script_path_exact: str | None = None
    script_path_start: str | None = None
    job_kinds: tuple[str, ...] | None = None
    state: str | None = None  # completed | queued | running | in_queue
    success: bool | None = None
    parent_job: UUID | None = None
    include_steps: bool = False
    page: int = 1
    per_page: int = 30


async def list_jobs(store: Store, workspace_id: str, where: JobFilter) -> list[dict[str, Any]]:
    """Jobs matching `where`, newest first, one page."""
    per_page = max(1, min(where.per_page, MAX_PER_PAGE))
    rows = await fetch_all(
        store,
        "list_jobs",
        workspace_id=workspace_id,
        trigger_kind=where.trigger_kind,
        trigger=where.trigger,
        script_path_exact=where.script_path_exact,
        script_path_start=where.script_path_start,
        job_kinds=list(where.job_kinds) if where.job_kinds else None,
        state=where.state,
        success=where.success,
        parent_job=where.parent_job,
        include_steps=where.include_steps or where.parent_job is not None,
        limit=per_page,
        offset=(max(where.page, 1) - 1) * per_page,
    )
    return [job_json(row) for row in rows]


async def get_job(store: Store, workspace_id: str, job_id: UUID) -> dict[str, Any]:
    """One job as JSON, or NotFound."""
    row = await fetch_one(store, "get_job", workspace_id=workspace_id, id=job_id)
    if row is None:
        raise NotFound(f"job {job_id} not found in workspace {workspace_id!r}")
    return job_json(row)


async def get_logs(store: Store, workspace_id: str, job_id: UUID) -> str:
    """A job's logs so far ("" when it printed nothing)."""
    await get_job(store, workspace_id, job_id)
    row = await fetch_one(store, "get_job_logs", workspace_id=workspace_id, id=job_id)
    return (row or {}).get("logs") or ""


async def wait_for_completion(
    store: Store, workspace_id: str, job_id: UUID, timeout_s: float, poll_s: float = 1.0
) -> dict[str, Any] | None:
    """The completed job, waiting on completion notifications; None on timeout.

    Notifications wake the wait at once; the poll covers completions made by another
    process on a store that cannot notify across processes (SQLite).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with store.notifications.subscribe(JOB_COMPLETED) as completed:
        while True:
            job = await get_job(store, workspace_id, job_id)
            if job["type"] == "CompletedJob":
                return job
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, poll_s)):
                    while await completed.get() != str(job_id):
                        pass


def job_json(row: Row) -> dict[str, Any]:
    """A job row in Windmill's `QueuedJob` / `CompletedJob` JSON shape."""
    completed = row["status"] is not None
    common: dict[str, Any] = {
        "id": str(row["id"]),
        "workspace_id": row["workspace_id"],
        "created_by": row["created_by"],
        "created_at": _iso(row["created_at"]),
        "permissioned_as": row["permissioned_as"],
        "email": row["permissioned_as_email"],
        "job_kind": row["kind"],
        "script_path": row["runnable_path"],
        "script_hash": f"{row['runnable_id']:016x}" if row["runnable_id"] is not None else None,
        "language": row["script_lang"],
        "args": row["args"],
        "parent_job": _str(row["parent_job"]),
        "root_job": _str(row["root_job"]),
        "flow_step_id": row["flow_step_id"],
        "is_flow_step": row["parent_job"] is not None,
        "trigger": row["trigger"],
        "trigger_kind": row["trigger_kind"],
        "schedule_path": row["trigger"] if row["trigger_kind"] == "schedule" else None,
        "tag": row["tag"],
        "priority": row["priority"],
        "labels": row["labels"],
        "visible_to_owner": True,
        "preprocessed": row["preprocessed"],
    }
    if row["raw_flow"] is not None:
        common["raw_flow"] = row["raw_flow"]
    if completed:
        return {
            "type": "CompletedJob",
            **common,
            "started_at": _iso(row["completed_started_at"]),
            "completed_at": _iso(row["completed_at"]),
            "duration_ms": row["duration_ms"],
            "success": row["status"] == "success",
            "status": row["status"],
            "result": row["result"],
            "canceled": row["status"] == "canceled",
            "canceled_by": row["canceled_by"],
            "canceled_reason": row["canceled_reason"],
            "is_skipped": row["status"] == "skipped",
            "deleted": False,
            "mem_peak": row["memory_peak"],
            "worker": row["worker"],
            "retries": [str(r) for r in row["retries"] or []],
            "flow_status": row["flow_status"],
        }
    return {
        "type": "QueuedJob",
        **common,
        "running": bool(row["running"]),
        "scheduled_for": _iso(row["scheduled_for"]),
        "started_at": _iso(row["queue_started_at"]),
        "canceled": row["queue_canceled_by"] is not None,
        "canceled_by": row["queue_canceled_by"],
        "canceled_reason": row["queue_canceled_reason"],
        "worker": row["queue_worker"],
        "flow_status": row["queue_flow_status"],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)

"""Reading and canceling jobs under `/w/{workspace}/jobs/...` and `/jobs_u/...`.

Lists take Windmill's filters: `trigger_kind`, `trigger_path`, `script_path_exact`,
`script_path_start`, `job_kinds` (comma-separated), `success`, `running`, `parent_job`,
`is_flow_step` / `has_null_parent` (flow steps are hidden unless asked for), `page` (from 1),
`per_page`. Other filters of Windmill's are not supported and are ignored.
A job appears in Windmill's JSON shape with null fields left out, as Windmill serialises them.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.errors import NotFound
from gateway.http_routes.api import audit
from gateway.http_routes.api.auth import Caller, in_workspace
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.permissions import visible
from gateway.http_routes.api.request_parsing import (
    Page,
    parse_model,
    path_uuid,
    query_bool,
    query_text,
    query_uuid,
    read_json,
)
from gateway.jobs.cancel import cancel_job
from gateway.jobs.read import JobFilter, get_job, get_logs, list_jobs
from gateway.store import fetch_one

DOMAIN = "jobs"


def windmill_job(job: dict[str, Any]) -> dict[str, Any]:
    """A job as the API sends it: null fields left out."""
    return {key: value for key, value in job.items() if value is not None}


def job_filter(request: Request, state: str | None) -> JobFilter:
    """The filters of a list request; `state` is the list's own (completed, in_queue, any)."""
    running = query_bool(request, "running")
    if running is not None and state != "completed":
        state = "running" if running else "queued"
    kinds = query_text(request, "job_kinds")
    page = Page.of(request)
    return JobFilter(
        trigger_kind=query_text(request, "trigger_kind"),
        trigger=query_text(request, "trigger_path"),
        script_path_exact=query_text(request, "script_path_exact"),
        script_path_start=query_text(request, "script_path_start"),
        job_kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()) if kinds else None,
        state=state,
        success=query_bool(request, "success"),
        parent_job=query_uuid(request, "parent_job"),
        include_steps=query_bool(request, "is_flow_step") is True
        or query_bool(request, "has_null_parent") is False,
        page=page.number,
        per_page=page.per_page,
    )


async def _list(request: Request, caller: Caller, state: str | None) -> Response:
    caller.require_scope(DOMAIN, "read")
    found = await list_jobs(store_of(request), caller.workspace_id, job_filter(request, state))
    return JSONResponse(
        [windmill_job(job) for job in found if visible(caller, job["script_path"] or "")]
    )


async def list_all_jobs(request: Request, caller: Caller) -> Response:
    """Queued, running and completed jobs, newest first."""
    return await _list(request, caller, None)


async def list_queue(request: Request, caller: Caller) -> Response:
    """Queued and running jobs, newest first."""
    return await _list(request, caller, "in_queue")


async def list_completed(request: Request, caller: Caller) -> Response:
    """Completed jobs, newest first."""
    return await _list(request, caller, "completed")


async def _visible_job(request: Request, caller: Caller) -> tuple[UUID, dict[str, Any]]:
    caller.require_scope(DOMAIN, "read")
    job_id = path_uuid(request)
    job = await get_job(store_of(request), caller.workspace_id, job_id)
    if not visible(caller, job["script_path"] or ""):
        raise NotFound(f"job {job_id} not found in workspace {caller.workspace_id!r}")
    return job_id, job


async def get_one_job(request: Request, caller: Caller) -> Response:
    """One job, queued or completed."""
    _, job = await _visible_job(request, caller)
    return JSONResponse(windmill_job(job))


async def get_completed_job(request: Request, caller: Caller) -> Response:
    """One completed job."""
    job_id, job = await _visible_job(request, caller)
    if job["type"] != "CompletedJob":
        raise NotFound(f"job {job_id} has not completed")
    return JSONResponse(windmill_job(job))


async def get_result(request: Request, caller: Caller) -> Response:
    """The result of a completed job."""
    job_id, _ = await _visible_job(request, caller)
    row = await fetch_one(
        store_of(request), "get_completed_result", workspace_id=caller.workspace_id, id=job_id
    )
    if row is None:
        raise NotFound(f"job {job_id} has not completed")
    return JSONResponse(row["result"])


async def get_result_maybe(request: Request, caller: Caller) -> Response:
    """Whether the job started and completed, and its result once it did (`wmill` polls this)."""
    _, job = await _visible_job(request, caller)
    if job["type"] == "CompletedJob":
        body = {"started": True, "completed": True, "success": job["success"]}
        return JSONResponse({**body, "result": job["result"]})
    started = bool(job["running"]) or job["started_at"] is not None
    return JSONResponse({"started": started, "completed": False, "success": False, "result": None})


async def get_job_logs(request: Request, caller: Caller) -> Response:
    """A job's logs so far, as text."""
    job_id, _ = await _visible_job(request, caller)
    return PlainTextResponse(await get_logs(store_of(request), caller.workspace_id, job_id))


class CancelRequest(BaseModel):
    """The body of `POST /jobs_u/queue/cancel/{id}`."""

    model_config = ConfigDict(extra="ignore")

    reason: str | None = None


async def cancel(request: Request, caller: Caller) -> Response:
    """Cancel a queued or running job (a running one stops at its worker's next check)."""
    caller.require_scope(DOMAIN, "write")
    body = parse_model(CancelRequest, await read_json(request, default={}))
    job_id, job = await _visible_job(request, caller)
    async with store_of(request).transaction() as tx:
        await cancel_job(tx, caller.workspace_id, job_id, caller.username, body.reason)
        await audit.record(
            tx,
            caller.identity,
            caller.workspace_id,
            "jobs.cancel",
            job["script_path"],
            action="update",
            parameters={"job_id": str(job_id), "reason": body.reason},
        )
    return PlainTextResponse(str(job_id))


def _both(suffix: str) -> list[str]:
    return [f"/w/{{workspace}}/jobs/{suffix}", f"/w/{{workspace}}/jobs_u/{suffix}"]


routes = [
    Route("/w/{workspace}/jobs/list", in_workspace(list_all_jobs), methods=["GET"]),
    Route("/w/{workspace}/jobs/queue/list", in_workspace(list_queue), methods=["GET"]),
    Route("/w/{workspace}/jobs/completed/list", in_workspace(list_completed), methods=["GET"]),
    *(Route(p, in_workspace(get_one_job), methods=["GET"]) for p in _both("get/{id}")),
    *(
        Route(p, in_workspace(get_completed_job), methods=["GET"])
        for p in _both("completed/get/{id}")
    ),
    *(
        Route(p, in_workspace(get_result), methods=["GET"])
        for p in _both("completed/get_result/{id}")
    ),
    *(
        Route(p, in_workspace(get_result_maybe), methods=["GET"])
        for p in _both("completed/get_result_maybe/{id}")
    ),
    *(Route(p, in_workspace(get_job_logs), methods=["GET"]) for p in _both("get_logs/{id}")),
    *(Route(p, in_workspace(cancel), methods=["POST"]) for p in _both("queue/cancel/{id}")),
]

"""Recent jobs that did not succeed, newest first, each with the end of its logs.

A job with a retry policy is a wrapper whose attempts are its child jobs: its logs are those of
its last attempt, the one whose failure ended it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response

from gateway.dashboard.access import dashboard_caller
from gateway.dashboard.activity import age_text
from gateway.dashboard.rendering import render
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.permissions import visible
from gateway.http_routes.api.request_parsing import query_int
from gateway.jobs.read import JobFilter, get_logs, list_jobs
from gateway.store.values import utc_now

PER_PAGE: Final = 20
LOG_TAIL_CHARS: Final = 64 * 1024
"""A job may log megabytes; the page shows the end, where the error is."""


@dataclass(frozen=True, slots=True)
class FailedJob:
    """A job that did not succeed (Windmill's job JSON), with what it said last."""

    job: dict[str, Any]
    logs: str
    logs_cut: bool
    logs_of: str
    age: str


async def failed_jobs_page(request: Request) -> Response:
    """A page of the workspace's unsuccessful jobs the caller may see, with their logs."""
    caller = await dashboard_caller(request)
    caller.require_scope("jobs", "read")
    page = query_int(request, "page", 1, minimum=1)
    store = store_of(request)
    jobs = await list_jobs(
        store,
        caller.workspace_id,
        JobFilter(state="completed", success=False, page=page, per_page=PER_PAGE),
    )
    now = utc_now()
    failed: list[FailedJob] = []
    for job in jobs:
        if not visible(caller, job["script_path"] or ""):
            continue
        logs_of = job["retries"][-1] if job["retries"] else job["id"]
        logs = await get_logs(store, caller.workspace_id, UUID(logs_of))
        failed.append(
            FailedJob(
                job=job,
                logs=logs[-LOG_TAIL_CHARS:],
                logs_cut=len(logs) > LOG_TAIL_CHARS,
                logs_of=logs_of,
                age=age_text(datetime.fromisoformat(job["created_at"]), now),
            )
        )
    return render(
        request,
        "failed_jobs.html",
        {
            "workspace": caller.workspace_id,
            "user": caller.username,
            "is_admin": caller.is_admin,
            "section": "failed_jobs",
            "jobs": failed,
            "page": page,
            "more": len(jobs) == PER_PAGE,
        },
    )

"""Jobs parked by suspended triggers: `POST /w/{ws}/trigger/{kind}/resume_suspended_trigger_jobs/
{path}` and `.../cancel_suspended_trigger_jobs/{path}`, body `{"job_ids"?: [uuid]}`."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.http_routes.api import audit
from gateway.http_routes.api.auth import Caller, in_workspace
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.request_parsing import parse_model, read_json
from gateway.jobs.suspended import cancel_parked_jobs, resume_parked_jobs


class ParkedJobs(BaseModel):
    """Which parked jobs to act on (all of the trigger's when absent)."""

    model_config = ConfigDict(extra="ignore")

    job_ids: list[UUID] | None = None


async def _target(request: Request, caller: Caller) -> tuple[str, str, ParkedJobs]:
    kind = request.path_params["trigger_kind"]
    path = request.path_params["path"]
    caller.require_scope(f"{kind}_triggers", "write", path)
    body = parse_model(ParkedJobs, await read_json(request, default={}))
    return kind, path, body


async def resume(request: Request, caller: Caller) -> Response:
    """Reassign the parked jobs to the trigger's current target and make them due."""
    kind, path, body = await _target(request, caller)
    async with store_of(request).transaction() as tx:
        count = await resume_parked_jobs(tx, caller.workspace_id, kind, path, body.job_ids)
        await audit.record(
            tx, caller.identity, caller.workspace_id, f"{kind}_triggers.resume_suspended_jobs",
            path, action="update", parameters={"count": count},
        )  # fmt: skip
    return JSONResponse(f"Reassigned {count} jobs")


async def cancel(request: Request, caller: Caller) -> Response:
    """Cancel the parked jobs."""
    kind, path, body = await _target(request, caller)
    async with store_of(request).transaction() as tx:
        count = await cancel_parked_jobs(
            tx, caller.workspace_id, kind, path, canceled_by=caller.username, job_ids=body.job_ids
        )
        await audit.record(
            tx, caller.identity, caller.workspace_id, f"{kind}_triggers.cancel_suspended_jobs",
            path, action="update", parameters={"count": count},
        )  # fmt: skip
    return JSONResponse(f"Canceled {count} jobs" if count else "No jobs to cancel")


PREFIX = "/w/{workspace}/trigger/{trigger_kind}"
routes = [
    Route(f"{PREFIX}/{action}_suspended_trigger_jobs/{{path:path}}", in_workspace(handler),
          methods=["POST"])
    for action, handler in (("resume", resume), ("cancel", cancel))
]  # fmt: skip

"""Running scripts (Windmill's webhooks): `POST /w/{ws}/jobs/run/p/{path}` and `/run/h/{hash}`
answer 201 with the job id; `POST|GET /jobs/run_wait_result/p/{path}` wait for the job and answer
its result, with status 500 when the job failed, as Windmill does.

The body is the args object (another JSON value becomes `{"body": value}`; GET takes it as
`?payload=<url-safe base64 of JSON>`). Query options: `scheduled_in_secs`, `scheduled_for`,
`retry` (a retry policy as JSON). Jobs run as the caller and carry `trigger_kind = webhook`.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.errors import Forbidden, InvalidInput
from gateway.http_routes.api import audit
from gateway.http_routes.api.auth import Caller, in_workspace, scope_allows
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.errors import error_response
from gateway.http_routes.api.permissions import require_visible
from gateway.http_routes.api.request_parsing import query_text, read_json
from gateway.jobs.enqueue import enqueue
from gateway.jobs.model import NewJob
from gateway.jobs.read import wait_for_completion
from gateway.jobs.retry import RetryPolicy, RetryPolicyError
from gateway.scripts import format_hash, parse_hash, script_by_hash
from gateway.store.values import utc_now

WAIT_RESULT_TIMEOUT_S: Final = 600.0
"""How long `run_wait_result` waits (Windmill's TIMEOUT_WAIT_RESULT default)."""
WAIT_POLL_S: Final = 0.5


def require_run_scope(caller: Caller, target: str) -> None:
    """Forbidden unless the token may run `target`.

    Accepted scopes: `jobs:run`, `jobs:run:scripts:<path>` and the webhook form `run:script/<path>`.
    """
    scopes = caller.token.scopes
    if scopes is not None and not (
        scope_allows(scopes, "jobs", "run", f"scripts:{target}") or f"run:script/{target}" in scopes
    ):
        raise Forbidden(f"the token's scopes do not allow running {target}")


async def run_args(request: Request) -> dict[str, Any]:
    """The job's arguments, from the body (or `?payload=` on GET)."""
    if request.method == "GET":
        payload = query_text(request, "payload")
        try:
            data = json.loads(base64.urlsafe_b64decode(payload)) if payload else {}
        except (ValueError, binascii.Error):
            raise InvalidInput("payload", "must be url-safe base64 of a JSON value") from None
    else:
        data = await read_json(request, default={})
    return data if isinstance(data, dict) else {"body": data}


def _delay_s(request: Request) -> float:
    seconds = query_text(request, "scheduled_in_secs")
    moment = query_text(request, "scheduled_for")
    try:
        if seconds is not None:
            return max(float(seconds), 0.0)
        if moment is not None:
            return max((datetime.fromisoformat(moment) - utc_now()).total_seconds(), 0.0)
    except (ValueError, TypeError):
        field = "scheduled_in_secs" if seconds is not None else "scheduled_for"
        raise InvalidInput(field, "not a number of seconds or an ISO-8601 timestamp") from None
    return 0.0


def _retry(request: Request) -> RetryPolicy | None:
    raw = query_text(request, "retry")
    if raw is None:
        return None
    try:
        return RetryPolicy.parse(json.loads(raw))
    except ValueError as exc:
        problems = exc.problems if isinstance(exc, RetryPolicyError) else (f"retry: {exc}",)
        field, _, reason = problems[0].partition(": ")
        raise InvalidInput(field, reason) from None


async def _submit(
    request: Request, caller: Caller, path: str | None = None, version: int | None = None
) -> UUID:
    """Enqueue a run of the latest version of `path`, or of the script `version`."""
    job = NewJob(
        workspace_id=caller.workspace_id,
        args=await run_args(request),
        permissioned_as=caller.identity.permissioned_as,
        permissioned_as_email=caller.email,
        created_by=caller.username,
        runnable_path=path,
        script_hash=version,
        trigger=path,
        trigger_kind="webhook",
        delay_s=_delay_s(request),
        retry=_retry(request),
    )
    async with store_of(request).transaction() as tx:
        (queued,) = await enqueue(tx, [job])
        resource = path or f"hash/{format_hash(version or 0)}"
        await audit.record(
            tx,
            caller.identity,
            caller.workspace_id,
            "jobs.run",
            resource,
            action="execute",
            parameters={"job_id": str(queued.job_id)},
        )
    return queued.job_id


def _runnable_path(request: Request, caller: Caller) -> str:
    path: str = request.path_params["path"]
    require_run_scope(caller, path)
    require_visible(caller, path, "script")
    return path


async def run_by_path(request: Request, caller: Caller) -> Response:
    """Enqueue the latest version of a script; 201 with the job id."""
    path = _runnable_path(request, caller)
    return PlainTextResponse(str(await _submit(request, caller, path)), 201)


async def run_by_hash(request: Request, caller: Caller) -> Response:
    """Enqueue one version of a script; 201 with the job id."""
    version = parse_hash(request.path_params["hash"])
    async with store_of(request).transaction() as tx:
        script = await script_by_hash(tx, caller.workspace_id, version)
    require_run_scope(caller, script.path)
    require_visible(caller, script.path, "script")
    return PlainTextResponse(str(await _submit(request, caller, version=version)), 201)


async def run_wait_result(request: Request, caller: Caller) -> Response:
    """Run a script and answer its result: 200 when it succeeded, 500 with the error if not."""
    path = _runnable_path(request, caller)
    job_id = await _submit(request, caller, path)
    done = await wait_for_completion(
        store_of(request), caller.workspace_id, job_id, WAIT_RESULT_TIMEOUT_S, WAIT_POLL_S
    )
    if done is None:
        return error_response(
            500, f"timeout after {WAIT_RESULT_TIMEOUT_S:.0f}s waiting for job {job_id}"
        )
    return JSONResponse(done["result"], 200 if done["success"] else 500)


_PREFIX = "/w/{workspace}/jobs"
routes = [
    Route(f"{_PREFIX}/run/p/{{path:path}}", in_workspace(run_by_path), methods=["POST"]),
    Route(f"{_PREFIX}/run/h/{{hash}}", in_workspace(run_by_hash), methods=["POST"]),
    Route(
        f"{_PREFIX}/run_wait_result/p/{{path:path}}",
        in_workspace(run_wait_result),
        methods=["GET", "POST"],
    ),
]

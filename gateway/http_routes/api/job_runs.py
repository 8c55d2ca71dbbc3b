"""Running scripts (Windmill's webhooks, reference 4.10), with a token of the workspace
(`Authorization: Bearer <token>` or `?token=<token>`):

=========================================  ================================================
`POST run/p/{path}`, `POST run/h/{hash}`   201 with the job id, once the job is committed
`POST|GET run_wait_result/p/{path}`        the job's result, mapped as an HTTP route's sync
                                           result is (`windmill_status_code`, ...), except that
                                           a failed job is a 500, as Windmill answers
`POST run/f/{path}`                       the same for the latest version of a flow
`POST|GET run_wait_result/f/{path}`
=========================================  ================================================

The body is parsed as an HTTP route's is (JSON, form, text, CloudEvents; `body.py`); a GET
takes the args as `?payload=<url-safe base64 of JSON>`. Query options: `include_header=a,b`,
`include_query=x,y`, `raw`, `wrap_body`, `skip_preprocessor`, `scheduled_in_secs`,
`scheduled_for` and `retry` (a retry policy as JSON). An `Idempotency-Key` header makes the job's
dedup key `webhook:<path>:<key>` (`webhook:flow/<path>:<key>` for a flow): a retried request
gets the first job (and waits for it).

Jobs run the latest version of the script or flow (pinned when queued) as the caller, with
`trigger_kind = webhook`; a script or flow with a preprocessor gets the webhook event
(`http_args.py`). Flows ignore `retry`: their modules carry their own.
A `run_wait_result` client that disconnects cancels the job it created; after the sync timeout
setting the answer is a 504 naming the job.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from uuid import UUID

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gateway.errors import Forbidden, InvalidInput, NotFound
from gateway.http_routes.api import audit
from gateway.http_routes.api.auth import Caller, in_workspace, scope_allows
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.errors import error_response
from gateway.http_routes.api.permissions import require_visible
from gateway.http_routes.api.request_parsing import query_bool, query_text
from gateway.http_routes.routes.body import ParsedBody, parse_body, read_body
from gateway.http_routes.routes.credentials import WINDMILL_CREDENTIALS, without_credentials
from gateway.http_routes.routes.endpoint import CONNECTION_BROKE, header_map
from gateway.http_routes.routes.errors import RequestRefused
from gateway.http_routes.routes.http_args import WebhookRequestInfo, build_webhook_args
from gateway.http_routes.routes.responses import result_response
from gateway.http_routes.routes.submit import dedup_key
from gateway.http_routes.routes.waiting import ClientDisconnected, wait_while_connected
from gateway.jobs.cancel import cancel_job
from gateway.jobs.enqueue import enqueue
from gateway.jobs.model import Enqueued, NewJob
from gateway.jobs.retry import RetryPolicy, RetryPolicyError
from gateway.listeners.lease import TriggerRef
from gateway.scripts import Script, format_hash, parse_hash, script_by_hash
from gateway.settings import Settings
from gateway.store.values import utc_now
from gateway.triggers.args import RunnableShape
from gateway.triggers.runnables import FlowRunnable, Runnable, RunnableShapes

logger = logging.getLogger(__name__)

FAILED_JOB_STATUS: Final = 500


@dataclass(frozen=True, slots=True)
class RunOptions:
    """The query options of a run request this gateway honours."""

    include_headers: tuple[str, ...] = ()
    include_query: tuple[str, ...] = ()
    raw: bool = False
    wrap_body: bool = False
    skip_preprocessor: bool = False
    delay_s: float = 0.0
    retry: RetryPolicy | None = None

    @classmethod
    def of(cls, request: Request) -> RunOptions:
        """The options of `request`; InvalidInput naming a malformed one."""
        return cls(
            include_headers=_names(request, "include_header"),
            include_query=_names(request, "include_query"),
            raw=bool(query_bool(request, "raw")),
            wrap_body=bool(query_bool(request, "wrap_body")),
            skip_preprocessor=bool(query_bool(request, "skip_preprocessor")),
            delay_s=_delay_s(request),
            retry=_retry(request),
        )


def require_run_scope(caller: Caller, target: str, kind: str = "script") -> None:
    """Forbidden unless the token may run the `kind` (script or flow) at `target`.

    Accepted scopes: `jobs:run`, `jobs:run:scripts:<path>` (`flows:` for a flow) and the webhook
    form `run:script/<path>` (`run:flow/<path>`).
    """
    scopes = caller.token.scopes
    if scopes is not None and not (
        scope_allows(scopes, "jobs", "run", f"{kind}s:{target}") or f"run:{kind}/{target}" in scopes
    ):
        raise Forbidden(f"the token's scopes do not allow running {target}")


def _names(request: Request, option: str) -> tuple[str, ...]:
    """A comma-separated list of names (`include_header=a,b`)."""
    return tuple(name.strip() for name in (query_text(request, option) or "").split(",") if name)


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


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.gateway.settings
    return settings


def _shapes(request: Request) -> RunnableShapes:
    """The API's cache of script shapes (by version), created with the first run."""
    state = request.app.state
    shapes: RunnableShapes | None = getattr(state, "runnable_shapes", None)
    if shapes is None:
        shapes = state.runnable_shapes = RunnableShapes()
    return shapes


async def _run_body(request: Request, options: RunOptions) -> ParsedBody:
    """The parsed body (or `?payload=` on GET), read under the route body limit."""
    if request.method == "GET":
        payload = query_text(request, "payload")
        try:
            data = json.loads(base64.urlsafe_b64decode(payload)) if payload else {}
        except (ValueError, binascii.Error):
            raise InvalidInput("payload", "must be url-safe base64 of a JSON value") from None
        return ParsedBody(data if isinstance(data, dict) else {"body": data})
    headers = request.headers
    limit = _settings(request).http_route_max_body_bytes
    raw = await read_body(request.receive, limit, headers.get("content-length"))
    return parse_body(headers.get("content-type"), raw, keep_raw=options.raw)


@dataclass(frozen=True, slots=True)
class FlowPath:
    """A run of the latest version of the flow at `path`."""

    path: str


async def _submit(request: Request, caller: Caller, target: str | Script | FlowPath) -> Enqueued:
    """Enqueue a run of the latest version of the script at path `target`, of the script
    version `target`, or of the latest version of a flow."""
    options = RunOptions.of(request)
    if isinstance(target, FlowPath):
        path, resource = target.path, f"flow/{target.path}"
    elif isinstance(target, str):
        path, resource = target, target
    else:
        path, resource = None, f"hash/{format_hash(target.hash)}"
    try:
        key = dedup_key(
            TriggerRef("webhook", caller.workspace_id, resource),
            request.headers.get("idempotency-key"),
        )
        body = await _run_body(request, options)
    except RequestRefused as exc:
        raise HTTPException(exc.status, exc.reason, exc.headers) from None
    info = WebhookRequestInfo(
        headers=without_credentials(header_map(request), WINDMILL_CREDENTIALS),
        query=dict(request.query_params),
        include_headers=options.include_headers,
        include_query=options.include_query,
        wrap_body=options.wrap_body,
    )
    shapes = _shapes(request)
    async with store_of(request).transaction() as tx:
        runnable: Runnable | FlowRunnable
        if isinstance(target, FlowPath):
            runnable = await shapes.resolve_flow(tx, caller.workspace_id, target.path)
        elif isinstance(target, str):
            runnable = await shapes.resolve(tx, caller.workspace_id, target)
        else:
            runnable = Runnable(target, shapes.shape_of(target))
        shape = runnable.shape
        preprocess = shape.has_preprocessor and not options.skip_preprocessor
        args = build_webhook_args(body, info, shape if preprocess else RunnableShape())
        job = NewJob(
            workspace_id=caller.workspace_id,
            args=args,
            permissioned_as=caller.identity.permissioned_as,
            permissioned_as_email=caller.email,
            created_by=caller.username,
            runnable_path=runnable.path,
            script_hash=runnable.script_hash,
            flow_value=runnable.flow_value,
            flow_version=runnable.flow_version,
            trigger=path,
            trigger_kind="webhook",
            delay_s=options.delay_s,
            retry=None if isinstance(runnable, FlowRunnable) else options.retry,
            dedup_key=key,
            apply_preprocessor=preprocess,
        )
        (queued,) = await enqueue(tx, [job])
        if queued.created:
            await audit.record(
                tx,
                caller.identity,
                caller.workspace_id,
                "jobs.run",
                resource,
                action="execute",
                parameters={"job_id": str(queued.job_id)},
            )
    return queued


def _runnable_path(request: Request, caller: Caller, kind: str = "script") -> str:
    path: str = request.path_params["path"]
    require_run_scope(caller, path, kind)
    require_visible(caller, path, kind)
    return path


async def run_by_path(request: Request, caller: Caller) -> Response:
    """Enqueue the latest version of a script; 201 with the job id."""
    path = _runnable_path(request, caller)
    return PlainTextResponse(str((await _submit(request, caller, path)).job_id), 201)


async def run_by_hash(request: Request, caller: Caller) -> Response:
    """Enqueue one version of a script; 201 with the job id."""
    version = parse_hash(request.path_params["hash"])
    async with store_of(request).transaction() as tx:
        script = await script_by_hash(tx, caller.workspace_id, version)
    require_run_scope(caller, script.path)
    require_visible(caller, script.path, "script")
    return PlainTextResponse(str((await _submit(request, caller, script)).job_id), 201)


async def run_wait_result(request: Request, caller: Caller) -> Response:
    """Run a script and answer its result (see the module docstring)."""
    path = _runnable_path(request, caller)
    return await _answer_result(request, caller, await _submit(request, caller, path))


async def run_flow_wait_result(request: Request, caller: Caller) -> Response:
    """Run a flow and answer its result (see the module docstring)."""
    path = _runnable_path(request, caller, "flow")
    return await _answer_result(request, caller, await _submit(request, caller, FlowPath(path)))


async def _answer_result(request: Request, caller: Caller, queued: Enqueued) -> Response:
    """The result of the job `queued`, once it completed (see the module docstring)."""
    timeout_s = _settings(request).http_route_sync_timeout_s
    store = store_of(request)
    try:
        done = await wait_while_connected(
            store, caller.workspace_id, queued.job_id, request.receive, timeout_s
        )
    except ClientDisconnected:
        if queued.created:
            await _cancel(request, caller, queued.job_id)
        # Nobody reads this answer: the client has gone.
        return Response(status_code=499)
    if done is None:
        return error_response(504, f"timeout after {timeout_s:g}s waiting for job {queued.job_id}")
    try:
        return result_response(done, failed_status=FAILED_JOB_STATUS)
    except RequestRefused as exc:
        return error_response(exc.status, exc.reason)


async def _cancel(request: Request, caller: Caller, job_id: UUID) -> None:
    """Cancel the job of a client that went away before its result."""
    try:
        async with store_of(request).transaction() as tx:
            await cancel_job(tx, caller.workspace_id, job_id, caller.username, CONNECTION_BROKE)
    except NotFound:
        return  # it completed meanwhile
    logger.info(
        "webhook job %s canceled: %s",
        job_id,
        CONNECTION_BROKE,
        extra={"action": "job_canceled", "kind": "webhook"},
    )


async def run_flow(request: Request, caller: Caller) -> Response:
    """Enqueue the latest version of a flow; 201 with the job id."""
    path = _runnable_path(request, caller, "flow")
    return PlainTextResponse(str((await _submit(request, caller, FlowPath(path))).job_id), 201)


_PREFIX = "/w/{workspace}/jobs"
routes = [
    Route(f"{_PREFIX}/run/p/{{path:path}}", in_workspace(run_by_path), methods=["POST"]),
    Route(f"{_PREFIX}/run/h/{{hash}}", in_workspace(run_by_hash), methods=["POST"]),
    Route(f"{_PREFIX}/run/f/{{path:path}}", in_workspace(run_flow), methods=["POST"]),
    Route(
        f"{_PREFIX}/run_wait_result/p/{{path:path}}",
        in_workspace(run_wait_result),
        methods=["GET", "POST"],
    ),
    Route(
        f"{_PREFIX}/run_wait_result/f/{{path:path}}",
        in_workspace(run_flow_wait_result),
        methods=["GET", "POST"],
    ),
]

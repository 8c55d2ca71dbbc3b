"""From an accepted route request to a committed job.

The job runs the trigger's script (latest version, pinned) as the trigger's owner, with the
trigger's retry policy and error handler; `trigger_kind` is `http` and `trigger` the trigger's
path. An `Idempotency-Key` becomes the job's dedup key, so a retried request gets the first job.
"""

from __future__ import annotations

from typing import Final

from gateway.errors import NotFound
from gateway.http_routes.routes.body import ParsedBody
from gateway.http_routes.routes.errors import RequestRefused, RouteMisconfigured
from gateway.http_routes.routes.http_args import HttpRequestInfo, build_http_args
from gateway.http_routes.routes.table import HttpRoute
from gateway.jobs.enqueue import enqueue
from gateway.jobs.model import Enqueued, NewJob
from gateway.store import Store
from gateway.triggers.runnables import FLOW_TARGETS_UNSUPPORTED, RunnableShapes, job_dedup_key

MAX_IDEMPOTENCY_KEY: Final = 255


def default_creator(route: HttpRoute) -> str:
    """Who a route's jobs are created by when the caller is anonymous: `HTTP-<trigger path>`."""
    return f"HTTP-{route.trigger.path}"


def dedup_key(route: HttpRoute, idempotency_key: str | None) -> str | None:
    """The job dedup key of an `Idempotency-Key` header; 400 when the key is too long."""
    if idempotency_key is None:
        return None
    if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        raise RequestRefused(400, f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
    return job_dedup_key(route.trigger, idempotency_key)


class RouteJobs:
    """Enqueues the jobs of route requests."""

    def __init__(self, store: Store, shapes: RunnableShapes | None = None) -> None:
        self._store = store
        self._shapes = shapes if shapes is not None else RunnableShapes()

    async def submit(
        self,
        route: HttpRoute,
        body: ParsedBody,
        info: HttpRequestInfo,
        *,
        created_by: str,
        idempotency_key: str | None,
    ) -> Enqueued:
        """Enqueue the request's job and commit; the earlier job for a repeated idempotency key."""
        target = route.target
        if target is None:
            raise RouteMisconfigured(route.target_error or "the trigger cannot create jobs")
        if target.is_flow:
            raise RequestRefused(501, FLOW_TARGETS_UNSUPPORTED)
        key = dedup_key(route, idempotency_key)
        workspace_id = route.trigger.workspace_id
        async with self._store.transaction() as tx:
            try:
                runnable = await self._shapes.resolve(tx, workspace_id, target.script_path)
            except NotFound as exc:
                raise RequestRefused(404, str(exc)) from None
            args = build_http_args(
                body, info, runnable.shape, wrap_body=bool(route.row["wrap_body"])
            )
            [queued] = await enqueue(
                tx,
                [
                    NewJob(
                        workspace_id=workspace_id,
                        args=args,
                        permissioned_as=target.permissioned_as,
                        permissioned_as_email=target.email,
                        created_by=created_by,
                        runnable_path=runnable.script.path,
                        script_hash=runnable.script.hash,
                        trigger=route.trigger.path,
                        trigger_kind="http",
                        retry=target.retry,
                        error_handler=target.error_handler,
                        dedup_key=key,
                        apply_preprocessor=runnable.shape.has_preprocessor,
                        suspended=target.suspended,
                    )
                ],
            )
        return queued

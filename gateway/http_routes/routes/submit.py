"""From an accepted route request to a committed job, with the jobs of concurrent requests
committed together (group commit).

The job runs the trigger's script (latest version, pinned) as the trigger's owner, with the
trigger's retry policy and error handler, or the trigger's flow (latest version, pinned);
`trigger_kind` is `http` and `trigger` the trigger's path. An `Idempotency-Key` becomes the
job's dedup key, so a retried request gets the first job.

Group commit: a request's job joins the batch of the next transaction, and the request is
answered once that transaction committed. One transaction runs at a time; the requests that
arrive while it runs form the next batch, so a busy instance commits many jobs per transaction
while a quiet one commits each at once. (A second transaction in flight would hide a round trip,
but halve the batches: every batch costs the same few statements and wake-ups whatever its size,
and on a busy instance that CPU is what limits the rate.) A batch
whose transaction fails is retried job by job, so that one request's bad job (args the database
refuses) fails that request alone.

A batch of plain script jobs whose scripts were resolved before is written without reading the
scripts again: the statement writing the jobs checks that each is still the latest version
(`pinned_jobs.py`); any other batch resolves its scripts and flows, and is enqueued as usual.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Final

from gateway.errors import NotFound
from gateway.http_routes.routes.body import ParsedBody
from gateway.http_routes.routes.errors import RequestRefused, RouteMisconfigured
from gateway.http_routes.routes.http_args import HttpRequestInfo, build_http_args
from gateway.http_routes.routes.pinned_jobs import LatestScripts, insert_pinned, is_plain
from gateway.http_routes.routes.table import HttpRoute
from gateway.jobs.enqueue import enqueue
from gateway.jobs.model import Enqueued, NewJob
from gateway.listeners.lease import TriggerRef
from gateway.store import Store, Transaction
from gateway.triggers.runnables import (
    FlowRunnable,
    Runnable,
    RunnableShapes,
    TriggerTarget,
    job_dedup_key,
)

logger = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY: Final = 255
MAX_BATCH: Final = 256
"""The most jobs one transaction commits."""


def default_creator(route: HttpRoute) -> str:
    """Who a route's jobs are created by when the caller is anonymous: `HTTP-<trigger path>`."""
    return f"HTTP-{route.trigger.path}"


def dedup_key(trigger: TriggerRef, idempotency_key: str | None) -> str | None:
    """The job dedup key of an `Idempotency-Key` header sent to `trigger` (a route, or a
    webhook's runnable: `webhook:<path>:<key>`); 400 when the key is empty or too long."""
    if idempotency_key is None:
        return None
    if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        raise RequestRefused(400, f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
    return job_dedup_key(trigger, idempotency_key)


@dataclass(frozen=True, slots=True)
class _Request:
    """One request waiting for its job to be committed."""

    route: HttpRoute
    target: TriggerTarget
    body: ParsedBody
    info: HttpRequestInfo
    created_by: str
    dedup_key: str | None
    answer: asyncio.Future[Enqueued]

    def job(self, runnable: Runnable | FlowRunnable) -> NewJob:
        """The job of this request."""
        target = self.target
        return NewJob(
            workspace_id=self.route.trigger.workspace_id,
            args=build_http_args(
                self.body, self.info, runnable.shape, wrap_body=bool(self.route.row["wrap_body"])
            ),
            permissioned_as=target.permissioned_as,
            permissioned_as_email=target.email,
            created_by=self.created_by,
            runnable_path=runnable.path,
            script_hash=runnable.script_hash,
            flow_value=runnable.flow_value,
            flow_version=runnable.flow_version,
            trigger=self.route.trigger.path,
            trigger_kind="http",
            retry=None if target.is_flow else target.retry,
            error_handler=None if target.is_flow else target.error_handler,
            dedup_key=self.dedup_key,
            apply_preprocessor=runnable.shape.has_preprocessor,
            suspended=target.suspended,
        )


class RouteJobs:
    """Enqueues the jobs of route requests, concurrent ones in one transaction."""

    def __init__(
        self, store: Store, shapes: RunnableShapes | None = None, max_batch: int = MAX_BATCH
    ) -> None:
        self._store = store
        self._shapes = shapes if shapes is not None else RunnableShapes()
        self._latest = LatestScripts()
        self._max_batch = max_batch
        self._waiting: list[_Request] = []
        self._committer: asyncio.Task[None] | None = None

    async def submit(
        self,
        route: HttpRoute,
        body: ParsedBody,
        info: HttpRequestInfo,
        *,
        created_by: str,
        idempotency_key: str | None,
    ) -> Enqueued:
        """Enqueue the request's job; once committed, its id (the earlier job's for a repeated
        idempotency key)."""
        target = route.target
        if target is None:
            raise RouteMisconfigured(route.target_error or "the trigger cannot create jobs")
        key = dedup_key(route.trigger, idempotency_key)
        answer: asyncio.Future[Enqueued] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Request(route, target, body, info, created_by, key, answer))
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_waiting(), name="http-route:commit")
        return await answer

    async def close(self) -> None:
        """Wait for the jobs being committed."""
        if self._committer is not None:
            await asyncio.gather(self._committer, return_exceptions=True)

    async def _commit_waiting(self) -> None:
        """Commit batches of the waiting requests until none is left."""
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                try:
                    await self._commit_batch(batch)
                except BaseException:
                    # Cancelled: the loop is closing, nobody may wait forever.
                    for request in [*batch, *self._waiting]:
                        request.answer.cancel()
                    self._waiting.clear()
                    raise
        finally:
            # Gone now, not by a done callback that runs later: a request queued in between
            # would otherwise find a committer that is no more and wait forever.
            self._committer = None

    async def _commit_batch(self, batch: list[_Request]) -> None:
        """Commit `batch` in one transaction, or, when that fails, each of its jobs alone."""
        try:
            outcomes = await self._commit(batch)
        except Exception as exc:
            if len(batch) == 1:
                _answer(batch[0], exc)
                return
            logger.warning(
                "a group commit of %d route jobs failed (%s); committing them one by one",
                len(batch),
                exc,
                extra={"action": "group_commit_split"},
            )
            for request in batch:
                await self._commit_batch([request])
            return
        for request, outcome in zip(batch, outcomes, strict=True):
            _answer(request, outcome)

    async def _commit(self, batch: list[_Request]) -> list[Enqueued | RequestRefused]:
        """One transaction for the jobs of `batch`; each request's outcome, in order."""
        pinned = await self._commit_pinned(batch)
        if pinned is not None:
            return list(pinned)
        async with self._store.transaction() as tx:
            runnables: dict[tuple[str, str, bool], Runnable | FlowRunnable | NotFound] = {}
            refused: dict[int, RequestRefused] = {}
            jobs: list[NewJob] = []
            for index, request in enumerate(batch):
                runnable = await self._runnable(tx, request, runnables)
                if isinstance(runnable, NotFound):
                    refused[index] = RequestRefused(404, str(runnable))
                else:
                    jobs.append(request.job(runnable))
            scripts = [known.script for known in runnables.values() if isinstance(known, Runnable)]
            queued = iter(await enqueue(tx, jobs, scripts))
        return [refused.get(index) or next(queued) for index in range(len(batch))]

    async def _commit_pinned(self, batch: list[_Request]) -> list[Enqueued] | None:
        """The batch written without reading its scripts, when its jobs are plain and their
        scripts known (`pinned_jobs.py`); None, with nothing written, when they are not or a
        script changed since."""
        runnables: list[Runnable] = []
        for request in batch:
            target = request.target
            if target.is_flow or request.dedup_key is not None:
                return None
            runnable = self._latest.get(request.route.trigger.workspace_id, target.script_path)
            if runnable is None:
                return None
            runnables.append(runnable)
        jobs = [request.job(runnable) for request, runnable in zip(batch, runnables, strict=True)]
        if not all(is_plain(job) for job in jobs):
            return None
        return await insert_pinned(self._store, jobs, runnables)

    async def _runnable(
        self,
        tx: Transaction,
        request: _Request,
        known: dict[tuple[str, str, bool], Runnable | FlowRunnable | NotFound],
    ) -> Runnable | FlowRunnable | NotFound:
        """The script or flow a request runs, looked up once per batch; NotFound when it is
        missing."""
        target = request.target
        key = (request.route.trigger.workspace_id, target.script_path, target.is_flow)
        if key not in known:
            try:
                known[key] = await self._shapes.resolve_target(tx, key[0], key[1], is_flow=key[2])
            except NotFound as exc:
                known[key] = exc
            resolved = known[key]
            if isinstance(resolved, Runnable):
                self._latest.put(resolved)
            elif not key[2]:
                self._latest.forget(key[0], key[1])
        return known[key]


def _answer(request: _Request, outcome: Enqueued | Exception) -> None:
    """Give a waiting request its outcome, unless it stopped waiting."""
    if request.answer.done():
        return
    if isinstance(outcome, Enqueued):
        request.answer.set_result(outcome)
    else:
        request.answer.set_exception(outcome)

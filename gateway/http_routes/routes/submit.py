"""From an accepted route request to a committed job, with the jobs of concurrent requests
committed together (group commit).

The job runs the trigger's script (latest version, pinned) as the trigger's owner, with the
trigger's retry policy and error handler, or the trigger's flow (latest version, pinned);
`trigger_kind` is `http` and `trigger` the trigger's path. An `Idempotency-Key` becomes the
job's dedup key, so a retried request gets the first job.

Group commit: a request's job joins the batch of the next write, and the request is answered
once that write committed. The requests that arrive while a write runs form the next batch, so a
busy instance commits many jobs per write while a quiet one commits each at once. The store says
how many writes may be in flight (`Store.writes_in_flight`, two on PostgreSQL and on a SQLite
file), so that the database has the next batch at hand while it commits one. A write beyond the
first starts only once `min_extra_batch` requests wait for it: every write costs the instance
and the database about the same whatever its size, and two writes of a request or two each
would spend that cost twice for nothing. A write that fails is retried job by job, so that one
request's bad job (args the database refuses) fails that request alone.

In a batch, the plain script jobs (`pinned_jobs.is_plain`) of each route target whose script was
resolved before are written together without reading the script again: the statement writing
them checks that it is still the latest version (`pinned_jobs.py`). Every other request of the
batch resolves its script or flow and is enqueued as usual, in one transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Final

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
MIN_EXTRA_BATCH: Final = 4
"""The fewest waiting requests for which a write starts while another is in flight."""


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


@dataclass(slots=True)
class _Request:
    """One request waiting for its job to be committed (not frozen: a frozen dataclass costs
    several times more to build, and there is one per request)."""

    route: HttpRoute
    target: TriggerTarget
    body: ParsedBody
    info: HttpRequestInfo
    created_by: str
    dedup_key: str | None
    answer: asyncio.Future[Enqueued]

    @property
    def is_plain(self) -> bool:
        """Whether the job of this request may be written by `insert_pinned`."""
        return self.dedup_key is None and is_plain(self.target)

    def args(self, runnable: Runnable | FlowRunnable) -> dict[str, Any]:
        """The args of this request's job running `runnable`."""
        wrap_body = bool(self.route.row["wrap_body"])
        return build_http_args(self.body, self.info, runnable.shape, wrap_body=wrap_body)

    def job(self, runnable: Runnable | FlowRunnable) -> NewJob:
        """The job of this request."""
        return dataclasses.replace(
            self.target.job_template(runnable),
            args=self.args(runnable),
            created_by=self.created_by,
            dedup_key=self.dedup_key,
        )


_Group = tuple[Runnable | None, list[_Request]]
"""Requests written together: the plain jobs of one target with its known script, or others."""


class RouteJobs:
    """Enqueues the jobs of route requests, concurrent ones written together (group commit)."""

    def __init__(
        self,
        store: Store,
        shapes: RunnableShapes | None = None,
        max_batch: int = MAX_BATCH,
        min_extra_batch: int = MIN_EXTRA_BATCH,
    ) -> None:
        self._store = store
        self._shapes = shapes if shapes is not None else RunnableShapes()
        self._latest = LatestScripts()
        self._max_batch = max_batch
        self._min_extra_batch = min_extra_batch
        self._waiting: list[_Request] = []
        self._committers: set[asyncio.Task[None]] = set()

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
        if self._write_wanted(len(self._committers)):
            committer = asyncio.create_task(self._commit_waiting(), name="http-route:commit")
            self._committers.add(committer)
        return await answer

    def _write_wanted(self, others_in_flight: int) -> bool:
        """Whether the waiting requests should be written now, besides the writes in flight."""
        if not self._waiting or others_in_flight >= self._store.writes_in_flight:
            return False
        return others_in_flight == 0 or len(self._waiting) >= self._min_extra_batch

    async def close(self) -> None:
        """Wait for the jobs being committed."""
        await asyncio.gather(*self._committers, return_exceptions=True)

    async def _commit_waiting(self) -> None:
        """Commit batches of the waiting requests until none is left, or until the few left
        can wait for another write in flight."""
        try:
            while self._write_wanted(len(self._committers) - 1):
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                try:
                    first, *others = self._groups(batch)
                    if others:
                        await asyncio.gather(*(self._commit_group(*g) for g in (first, *others)))
                    else:
                        await self._commit_group(*first)  # no task of its own: the usual case
                except BaseException:
                    # Cancelled: the loop is closing, nobody may wait forever.
                    for request in [*batch, *self._waiting]:
                        request.answer.cancel()
                    self._waiting.clear()
                    raise
        finally:
            # Gone now, not by a done callback that runs later: a request queued in between
            # would otherwise find no committer to take it, and wait forever.
            current = asyncio.current_task()
            assert current is not None
            self._committers.discard(current)

    def _groups(self, batch: list[_Request]) -> list[_Group]:
        """`batch` in groups written apart: the plain jobs of each target whose script is known,
        with that script, and every other request in one more group."""
        # By identity: the requests of one route share its target, and hashing a target (a
        # frozen dataclass of eight fields) would cost more than the rest of the grouping.
        plain: dict[int, _Group] = {}
        others: list[_Request] = []
        for request in batch:
            if not request.is_plain:
                others.append(request)
                continue
            target = request.target
            group = plain.get(id(target))
            if group is None:
                workspace_id, path = target.trigger.workspace_id, target.script_path
                group = plain[id(target)] = (self._latest.get(workspace_id, path), [])
            runnable, requests = group
            (others if runnable is None else requests).append(request)
        groups = [group for group in plain.values() if group[0] is not None]
        return [*groups, (None, others)] if others else groups

    async def _commit_group(self, known: Runnable | None, group: list[_Request]) -> None:
        """Commit `group` in one write, or, when that fails, each of its jobs alone."""
        try:
            outcomes = await self._commit(known, group)
        except Exception as exc:
            if len(group) == 1:
                _answer(group[0], exc)
                return
            logger.warning(
                "a group commit of %d route jobs failed (%s); committing them one by one",
                len(group),
                exc,
                extra={"action": "group_commit_split"},
            )
            for request in group:
                await self._commit_group(known, [request])
            return
        for request, outcome in zip(group, outcomes, strict=True):
            _answer(request, outcome)

    async def _commit(
        self, known: Runnable | None, group: list[_Request]
    ) -> list[Enqueued | RequestRefused]:
        """One write for the jobs of `group`; each request's outcome, in order. The plain jobs
        of one target whose script is `known` are written without reading it again
        (`pinned_jobs.py`), unless it changed since."""
        if known is not None:
            created = [(request.created_by, request.args(known)) for request in group]
            pinned = await insert_pinned(self._store, group[0].target, known, created)
            if pinned is not None:
                return list(pinned)
        async with self._store.transaction() as tx:
            runnables: dict[tuple[str, str, bool], Runnable | FlowRunnable | NotFound] = {}
            refused: dict[int, RequestRefused] = {}
            jobs: list[NewJob] = []
            for index, request in enumerate(group):
                runnable = await self._runnable(tx, request, runnables)
                if isinstance(runnable, NotFound):
                    refused[index] = RequestRefused(404, str(runnable))
                else:
                    jobs.append(request.job(runnable))
            scripts = [found.script for found in runnables.values() if isinstance(found, Runnable)]
            queued = iter(await enqueue(tx, jobs, scripts))
        return [refused.get(index) or next(queued) for index in range(len(group))]

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

"""The executor: claims due jobs, runs each in a sandboxed process, records how it ended.

One `Executor` has `slots` concurrent jobs. It wakes on the store's "jobs queued"
notification (LISTEN/NOTIFY on PostgreSQL, in-process on SQLite) and polls as a fallback.
A heartbeat loop pings the running jobs, stops those somebody canceled, and re-queues jobs
whose worker died. Shutdown stops claiming, lets running jobs finish for a grace period,
then gives the rest back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from uuid import UUID

from gateway.cancellation import raise_if_cancelling
from gateway.executor.completions import CompletionWriter
from gateway.executor.job_logs import JobLogWriter
from gateway.executor.job_user import describe, resolve_job_user
from gateway.executor.limits import JobLimits
from gateway.executor.outcome import LogSink, RunOutcome, RunRequest, error_result
from gateway.executor.process import run_fresh
from gateway.executor.signature import argument_order
from gateway.executor.warm import WarmPool
from gateway.jobs.model import ClaimedJob, JobOutcome, JobStatus, canceled_outcome
from gateway.jobs.zombies import requeue_zombie_jobs
from gateway.observability.metrics import GatewayMetrics
from gateway.scripts import Script, ScriptCache
from gateway.settings import Settings
from gateway.store import Json, Store
from gateway.store.notify import JOB_CANCELED, JOBS_QUEUED
from gateway.token_text import new_token_text, token_hash, token_prefix

logger = logging.getLogger(__name__)

Runner = Callable[[RunRequest, LogSink], Awaitable[RunOutcome]]
MAINTENANCE_EVERY_S = 3600.0


@dataclass(slots=True)
class _Running:
    job: ClaimedJob
    token: str
    task: asyncio.Task[None]
    cancel_requested: bool = False
    shutting_down: bool = False


@dataclass(slots=True)
class ExecutorStats:
    """Counters for metrics and tests."""

    claimed: int = 0
    completed: dict[str, int] = field(default_factory=dict)


class Executor:
    """Runs queued jobs with `settings.executor_slots` concurrent slots."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        worker_name: str | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self.worker_name = worker_name or settings.instance_name
        self.base_url = settings.base_url
        """Where jobs reach this gateway's API (set to the bound address once HTTP is up)."""
        self._slots = settings.executor_slots
        self._capacity = 2 * self._slots
        self._permits = asyncio.Semaphore(max(1, self._slots))
        self._scripts = ScriptCache(store)
        self._warm = WarmPool(max_per_version=self._slots)
        self._completions = CompletionWriter(store)
        self._running: dict[UUID, _Running] = {}
        self._job_tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.stats = ExecutorStats()
        self._metrics = metrics
        self._limits = JobLimits.from_settings(settings)
        self.job_user = resolve_job_user(settings.job_user) if self._slots else None
        """Who this executor's jobs run as (None: the gateway's own user)."""

    @property
    def sandbox(self) -> str:
        """Who jobs run as, in words, for the readiness check."""
        return describe(self.job_user)

    @property
    def state(self) -> str:
        """`stopped` (not started, no slots, or stopped), `running`, or `failed` (a loop ended)."""
        if not self._tasks:
            return "stopped"
        return "failed" if any(task.done() for task in self._tasks) else "running"

    async def start(self) -> None:
        """Start claiming and the heartbeat; returns at once."""
        if self._slots == 0:
            return
        self._completions.start()
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="executor:claim"),
            asyncio.create_task(self._heartbeat_loop(), name="executor:heartbeat"),
            asyncio.create_task(self._forward(JOBS_QUEUED), name="executor:wake"),
            asyncio.create_task(self._forward(JOB_CANCELED), name="executor:cancel"),
        ]
        logger.info(
            "executor %s started with %d slots; %s",
            self.worker_name,
            self._slots,
            self.sandbox,
            extra={"action": "executor_start"},
        )

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop claiming, wait `grace_s` for running jobs, give the others back to the queue."""
        grace = self._settings.shutdown_grace_s if grace_s is None else grace_s
        self._stopping.set()
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        running = list(self._job_tasks)
        if running:
            _done, pending = await asyncio.wait(running, timeout=grace)
            for entry in list(self._running.values()):
                if entry.task in pending:
                    entry.shutting_down = True
                    entry.task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._completions.stop()
        await self._warm.close()

    async def _forward(self, channel: str) -> None:
        async with self._store.notifications.subscribe(channel) as queue:
            while True:
                payload = await queue.get()
                if channel == JOB_CANCELED:
                    self._on_cancel_notice(payload)
                else:
                    self._wake.set()

    def _on_cancel_notice(self, payload: str) -> None:
        with contextlib.suppress(ValueError):
            entry = self._running.get(UUID(payload))
            if entry is not None:
                self._request_stop(entry)

    @staticmethod
    def _request_stop(entry: _Running) -> None:
        if not entry.cancel_requested:
            entry.cancel_requested = True
            entry.task.cancel()

    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            # Up to `slots` jobs wait, claimed, for a slot: a slot that frees starts the next job
            # at once, and claims come in batches of at least half the slots.
            free = self._capacity - len(self._running)
            if free > 0 and (free * 2 >= self._slots or not self._running):
                limit = min(free, self._settings.job_claim_batch)
                claimed: list[tuple[ClaimedJob, str]] = []
                try:
                    claimed = await self._claim(limit)
                except Exception:
                    logger.exception("claiming jobs failed", extra={"action": "claim_failed"})
                for job, token in claimed:
                    task = asyncio.create_task(self._run(job), name=f"job:{job.id}")
                    self._running[job.id] = _Running(job, token, task)
                    self._job_tasks.add(task)
                    task.add_done_callback(self._job_tasks.discard)
                if claimed and len(claimed) == limit:
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.job_poll_interval_s)

    async def _claim(self, limit: int) -> list[tuple[ClaimedJob, str]]:
        """Claim up to `limit` due jobs in one transaction, with their heartbeat rows and tokens."""
        async with self._store.transaction() as tx:
            rows = await tx.fetch_all("claim_jobs", worker=self.worker_name, limit=limit)
            if not rows:
                return []
            ids = [row["id"] for row in rows]
            await tx.execute("insert_runtimes", ids=ids)
            claimed_rows = await tx.fetch_all("get_claimed_jobs", ids=ids)
            jobs = [ClaimedJob.from_row(row) for row in claimed_rows]
            claimed = [(job, new_token_text()) for job in jobs]
            await tx.execute(
                "insert_job_tokens",
                tokens=Json(
                    [
                        {
                            "token": token_hash(token),
                            "token_prefix": token_prefix(token),
                            "ttl_s": (job.timeout or self._settings.job_timeout_s) + 300,
                            "workspace_id": job.workspace_id,
                            "owner": job.permissioned_as,
                            "email": job.permissioned_as_email,
                            "job": str(job.id),
                        }
                        for job, token in claimed
                    ]
                ),
            )
        self.stats.claimed += len(claimed)
        if self._metrics is not None:
            for row in claimed_rows:
                self._metrics.job_started(
                    row["trigger_kind"], row["scheduled_for"], row["started_at"]
                )
        return claimed

    async def _run(self, job: ClaimedJob) -> None:
        logs = JobLogWriter(
            self._store,
            job.id,
            job.workspace_id,
            self._settings.log_flush_interval_s,
            self._settings.max_log_bytes,
        )
        entry = self._running[job.id]
        started = time.monotonic()
        try:
            async with self._permits:
                outcome = await self._execute(job, entry.token, logs)
        except asyncio.CancelledError:
            if entry.shutting_down:
                await self._give_back(job, logs)
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()  # the cancel was ours: the job ends as canceled
            # Who canceled and why is on the queue row; completing the job records it.
            outcome = canceled_outcome(
                "unknown",
                None,
                started_at=job.started_at,
                duration_ms=round((time.monotonic() - started) * 1000),
                worker=self.worker_name,
            )
        except Exception as exc:
            logger.exception("job %s could not run", job.id, extra={"job": str(job.id)})
            outcome = JobOutcome(
                status=JobStatus.FAILURE,
                result=error_result(type(exc).__name__, f"the job could not be run: {exc}"),
                started_at=job.started_at,
                duration_ms=round((time.monotonic() - started) * 1000),
            )
        finally:
            self._running.pop(job.id, None)
            self._wake.set()
        await self._finish(job, outcome, logs)

    async def _execute(self, job: ClaimedJob, token: str, logs: JobLogWriter) -> JobOutcome:
        script = await self._script_of(job)
        request = RunRequest(
            language=script.language if script else (job.language or "python3"),
            content=script.content if script else (job.raw_code or ""),
            script_path=job.runnable_path or f"preview/{job.id}",
            args=job.args,
            timeout_s=self._timeout_of(job, script),
            memory_limit_mb=self._settings.job_memory_limit_mb,
            env=self._job_env(job, token),
            max_result_bytes=self._settings.max_result_bytes,
            run_preprocessor=job.preprocessed is False,
            arg_order=(
                script.arg_order
                if script
                else argument_order(job.language or "python3", job.raw_code or "")
            ),
            limits=self._limits,
            user=self.job_user,
        )
        if script is not None and script.dedicated_worker and script.language == "python3":
            ran = await self._warm.run(script.path, script.hash, request, logs.write)
        else:
            ran = await run_fresh(request, logs.write)
        return JobOutcome(
            status=JobStatus.SUCCESS if ran.success else JobStatus.FAILURE,
            result=ran.result,
            started_at=ran.started_at,
            duration_ms=ran.duration_ms,
            worker=self.worker_name,
            memory_peak_kb=ran.memory_peak_kb,
        )

    async def _script_of(self, job: ClaimedJob) -> Script | None:
        if job.runnable_id is None:
            return None
        return await self._scripts.get(job.workspace_id, job.runnable_id)

    def _timeout_of(self, job: ClaimedJob, script: Script | None) -> float:
        if job.timeout:
            return float(job.timeout)
        if script is not None and script.timeout:
            return float(script.timeout)
        return self._settings.job_timeout_s

    def _job_env(self, job: ClaimedJob, token: str) -> dict[str, str]:
        base = self.base_url
        user = job.permissioned_as.removeprefix("u/")
        env = {
            "WM_TOKEN": token,
            "WM_WORKSPACE": job.workspace_id,
            "WM_JOB_ID": str(job.id),
            "WM_JOB_PATH": job.runnable_path or "",
            "WM_EMAIL": job.permissioned_as_email,
            "WM_USERNAME": user,
            "WM_PERMISSIONED_AS": job.permissioned_as,
            "BASE_URL": base,
            "BASE_INTERNAL_URL": base,
            "WM_BASE_URL": base,
            "WM_STATE_PATH_NEW": f"{job.permissioned_as}/{job.runnable_path or job.id}",
        }
        if job.parent_job is not None:
            env["WM_FLOW_JOB_ID"] = str(job.parent_job)
            env["WM_ROOT_FLOW_JOB_ID"] = str(job.root_job or job.parent_job)
        if job.trigger_kind:
            env["WM_TRIGGER_KIND"] = job.trigger_kind
        return env

    async def _finish(self, job: ClaimedJob, outcome: JobOutcome, logs: JobLogWriter) -> None:
        await self._completions.record(job, outcome, logs)
        status = outcome.status.value
        if self._metrics is not None:
            self._metrics.job_finished(status, outcome.duration_ms / 1000)
        self.stats.completed[status] = self.stats.completed.get(status, 0) + 1
        logger.info(
            "%.2fs -> %s %s %s",
            outcome.duration_ms / 1000,
            job.runnable_path or "preview",
            job.id,
            status,
            extra={"action": "job_done", "job": str(job.id), "status": status},
        )

    async def _give_back(self, job: ClaimedJob, logs: JobLogWriter) -> None:
        logs.note("[the worker stopped before the job ended; the job goes back to the queue]")
        with contextlib.suppress(Exception):
            async with self._store.transaction() as tx:
                await logs.finish(tx)
                await tx.execute("requeue_job", id=job.id)
                await tx.execute("delete_runtime", id=job.id)
                await tx.execute("delete_job_tokens", jobs=[job.id])
                tx.notify(JOBS_QUEUED)

    async def _heartbeat_loop(self) -> None:
        last_maintenance = 0.0
        while True:
            await asyncio.sleep(self._settings.job_heartbeat_interval_s)
            try:
                await self._heartbeat()
                if time.monotonic() - last_maintenance > MAINTENANCE_EVERY_S:
                    last_maintenance = time.monotonic()
                    async with self._store.transaction() as tx:
                        await tx.execute(
                            "prune_dedup_keys",
                            retention_s=self._settings.dedup_retention_days * 86400.0,
                        )
            except Exception:
                raise_if_cancelling()
                logger.exception("executor heartbeat failed", extra={"action": "heartbeat"})

    async def _heartbeat(self) -> None:
        async with self._store.transaction() as tx:
            ids = list(self._running)
            canceled = await tx.fetch_all("ping_running_jobs", ids=ids) if ids else []
            await requeue_zombie_jobs(
                tx, self._settings.zombie_timeout_s, self._settings.max_zombie_requeues
            )
        for row in canceled:
            entry = self._running.get(row["id"])
            if entry is not None and row["canceled_by"] is not None:
                self._request_stop(entry)

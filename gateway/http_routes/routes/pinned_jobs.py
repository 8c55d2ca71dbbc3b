"""Route jobs written in one statement, pinned to the script version the instance resolved last.

A route's script is resolved (its latest version, read from the database) once, then kept per
(workspace, path) in `LatestScripts`. A batch of plain script jobs (no retry policy, no error
handler, no idempotency key) is written by `insert_pinned` as one statement committed alone
(`Store.write`, a single round trip on PostgreSQL): it checks that every pinned version is still
the latest of its path and writes nothing when one is not (a new deployment, an archived or
deleted script); else it writes the job rows, their queue rows and the executors' wake-up. The
caller then resolves again, so a job runs the version that was the latest when it was committed,
exactly as when the script is read for every batch. This saves the two script reads a batch made
(the latest version, then that version by its hash in `enqueue`) and the transaction's BEGIN and
COMMIT exchanges.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from gateway.jobs.enqueue import job_record
from gateway.jobs.job_ids import new_job_ids
from gateway.jobs.model import Enqueued, NewJob
from gateway.store import Json, Store
from gateway.store.notify import JOBS_QUEUED
from gateway.triggers.runnables import Runnable


class LatestScripts:
    """The last resolved version of each route script path, the least recently used evicted."""

    def __init__(self, capacity: int = 1000) -> None:
        self._capacity = capacity
        self._runnables: OrderedDict[tuple[str, str], Runnable] = OrderedDict()

    def get(self, workspace_id: str, path: str) -> Runnable | None:
        """The version last resolved for `path`, or None."""
        key = (workspace_id, path)
        runnable = self._runnables.get(key)
        if runnable is not None:
            self._runnables.move_to_end(key)
        return runnable

    def put(self, runnable: Runnable) -> None:
        """Remember `runnable` as the latest version of its path."""
        script = runnable.script
        self._runnables[(script.workspace_id, script.path)] = runnable
        self._runnables.move_to_end((script.workspace_id, script.path))
        if len(self._runnables) > self._capacity:
            self._runnables.popitem(last=False)

    def forget(self, workspace_id: str, path: str) -> None:
        """Drop what is known of `path` (it is missing or has changed)."""
        self._runnables.pop((workspace_id, path), None)


def is_plain(job: NewJob) -> bool:
    """Whether `job` is one row per table: no dedup key, no wrapper flow, not a flow run."""
    return (
        job.dedup_key is None
        and job.retry is None
        and job.error_handler is None
        and job.flow_value is None
    )


async def insert_pinned(
    store: Store, jobs: Sequence[NewJob], runnables: Sequence[Runnable]
) -> list[Enqueued] | None:
    """Enqueue plain `jobs`, each running its runnable's script version, as a transaction of
    their own; None, with nothing written, when one of those versions is no longer the latest
    of its path."""
    ids = new_job_ids(len(jobs))
    records = [
        job_record(job_id, job, runnable.script)
        for job_id, job, runnable in zip(ids, jobs, runnables, strict=True)
    ]
    pins = {
        (r.script.workspace_id, r.script.path): {
            "workspace_id": r.script.workspace_id,
            "path": r.script.path,
            "hash": r.script.hash,
        }
        for r in runnables
    }
    (outcome,) = await store.write(
        "enqueue_pinned_jobs",
        jobs=Json(records),
        pins=Json(list(pins.values())),
        channel=JOBS_QUEUED,
    )
    if outcome["written"] != len(records):
        return None
    return [Enqueued(job_id, created=True) for job_id in ids]

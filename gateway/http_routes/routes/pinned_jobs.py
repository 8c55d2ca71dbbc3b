"""Route jobs written in one statement, pinned to the script version the instance resolved last.

A route's script is resolved (its latest version, read from the database) once, then kept per
(workspace, path) in `LatestScripts`. The plain script jobs (no retry policy, no error handler,
no idempotency key) of one route target in a batch are written by `insert_pinned` as one
statement committed alone (`Store.write`, a single round trip on PostgreSQL): the columns they
share are sent once, as a template, and each job adds only its id, creator and args. The
statement checks that the pinned version is still the latest of its path and writes nothing when
it is not (a new deployment, an archived or deleted script); else it writes the job rows, their
queue rows and the executors' wake-up. The caller then resolves again, so a job runs the
version that was the latest when it was committed, exactly as when the script is read for every
batch. This saves the two script reads a batch made (the latest version, then that version by
its hash in `enqueue`) and the transaction's BEGIN and COMMIT exchanges.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.jobs.enqueue import job_record
from gateway.jobs.job_ids import new_job_ids
from gateway.jobs.model import Enqueued
from gateway.store import Json, Store
from gateway.store.notify import JOBS_QUEUED
from gateway.triggers.runnables import Runnable, TriggerTarget


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


def is_plain(target: TriggerTarget) -> bool:
    """Whether the jobs of `target` are one row per table: a script run without a retry
    policy (its wrapper flow) or an error handler. A job with an idempotency key is not plain
    either: its key is claimed first."""
    return not target.is_flow and target.retry is None and target.error_handler is None


async def insert_pinned(
    store: Store,
    target: TriggerTarget,
    runnable: Runnable,
    jobs: Sequence[tuple[str, Mapping[str, Any]]],
) -> list[Enqueued] | None:
    """Enqueue a plain job of `target` running `runnable`'s script version for each
    `(created_by, args)` of `jobs`, as a transaction of their own; None, with nothing written,
    when that version is no longer the latest of its path."""
    ids = new_job_ids(len(jobs))
    texts = [str(job_id) for job_id in ids]
    # What the jobs share, once: the template's own id, creator and args are not read.
    template = job_record(ids[0], target.job_template(runnable), runnable.script)
    (outcome,) = await store.write(
        "enqueue_pinned_jobs",
        template=Json(template),
        jobs=Json(
            [[text, creator, args] for text, (creator, args) in zip(texts, jobs, strict=True)]
        ),
        ids=Json(texts),
        channel=JOBS_QUEUED,
    )
    if outcome["written"] != len(jobs):
        return None
    return [Enqueued(job_id, created=True) for job_id in ids]

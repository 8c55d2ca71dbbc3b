"""The job one event becomes, built as a trigger's batches build it (`build_jobs`)."""

from __future__ import annotations

from gateway.jobs.model import NewJob
from gateway.triggers.args import ArgsError
from gateway.triggers.event import Event
from gateway.triggers.runnables import FlowRunnable, Runnable, TriggerTarget, build_jobs


def job_of(target: TriggerTarget, event: Event, runnable: Runnable | FlowRunnable) -> NewJob:
    """The job of `event`; ArgsError with the reason the event is set aside for, when it is."""
    prepared = build_jobs(target, runnable, [event])
    if prepared.rejected:
        raise ArgsError(prepared.rejected[0].reason)
    (job,) = prepared.jobs
    return job

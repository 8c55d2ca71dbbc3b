"""From a leased trigger's events to queued jobs: `TriggerJobSink`, the supervisor's `JobSink`.

A batch first goes through the trigger's filters (Kafka and WebSocket `filters` and
`filter_logic`): an event that does not pass is skipped, as Windmill skips it. Then, in one
transaction:

1. fence: the row still names this instance (`holds_lease`), else `LeaseLost` and nothing is
   written;
2. args and job metadata from the trigger row and the target script (`prepare_jobs`);
3. enqueue, deduplicated per source message (`<kind>:<trigger path>:<event dedup key>`);
4. every event that cannot become a job goes to the quarantine with its raw bytes and the reason.

A database error fails the whole batch (nothing is written), so the supervisor nacks it and the
source delivers it again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from gateway.jobs.enqueue import enqueue
from gateway.listeners.lease import Lease, LeaseLost
from gateway.listeners.sql_lease_store import holds_lease
from gateway.observability.metrics import GatewayMetrics
from gateway.store import Store
from gateway.triggers.event import Event
from gateway.triggers.filters import FilterLogic, load_filters, matches
from gateway.triggers.quarantine import quarantine_event
from gateway.triggers.runnables import RunnableShapes, prepare_jobs

logger = logging.getLogger(__name__)


class TriggerJobSink:
    """Turns the events of leased triggers into jobs, one fenced transaction per batch."""

    def __init__(
        self,
        store: Store,
        shapes: RunnableShapes | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self._store = store
        self._shapes = shapes if shapes is not None else RunnableShapes()
        self._metrics = metrics

    async def submit(self, lease: Lease, events: Sequence[Event]) -> list[UUID]:
        """Enqueue one job per event that passes the filters; return their ids in event order.

        An event seen before returns the job it first became. Raises `LeaseLost`, writing
        nothing, when this instance no longer holds the lease.
        """
        trigger = lease.trigger
        kept = _passing_filters(lease.row, events)
        async with self._store.transaction() as tx:
            if not await holds_lease(tx, lease):
                raise LeaseLost(trigger, lease.server_id)
            prepared = await prepare_jobs(tx, trigger, lease.row, kept, self._shapes)
            enqueued = await enqueue(tx, prepared.jobs, known=prepared.scripts)
            for rejected in prepared.rejected:
                await quarantine_event(tx, trigger, rejected.event, rejected.reason)
        created = sum(1 for queued in enqueued if queued.created)
        if self._metrics is not None:
            self._metrics.batch_submitted(
                trigger,
                received=len(events),
                filtered=len(events) - len(kept),
                enqueued=created,
                deduplicated=len(enqueued) - created,
                quarantined=len(prepared.rejected),
            )
        for rejected in prepared.rejected:
            logger.warning(
                "%s trigger %s: event %s quarantined: %s",
                trigger.kind,
                trigger,
                rejected.event.dedup_key or "without a dedup key",
                rejected.reason,
                extra={
                    "action": "event_quarantined",
                    "trigger": str(trigger),
                    "kind": trigger.kind,
                },
            )
        logger.debug(
            "%s trigger %s: %d events, %d filtered out, %d new jobs, %d quarantined",
            trigger.kind,
            trigger,
            len(events),
            len(events) - len(kept),
            created,
            len(prepared.rejected),
            extra={"action": "batch_submitted", "trigger": str(trigger), "kind": trigger.kind},
        )
        return [queued.job_id for queued in enqueued]


def _passing_filters(row: Mapping[str, Any], events: Sequence[Event]) -> list[Event]:
    """The events that pass the row's filters (rows of kinds without filters pass them all)."""
    filters = load_filters(list(row.get("filters") or []))
    if not filters:
        return list(events)
    logic: FilterLogic = "or" if row.get("filter_logic") == "or" else "and"
    return [event for event in events if matches(filters, logic, _message(event))]


def _message(event: Event) -> str | bytes:
    """What filters match: the Kafka value or the WebSocket text frame."""
    return event.payload if isinstance(event.payload, str | bytes) else event.raw

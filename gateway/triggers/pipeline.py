"""From a leased trigger's events to queued jobs: `TriggerJobSink`, the supervisor's `JobSink`.

A batch first goes through the trigger's filters (Kafka and WebSocket `filters` and
`filter_logic`): an event that does not pass is skipped, as Windmill skips it. Then, in one
transaction:

1. args and job metadata from the trigger row and the target script (`prepare_jobs`; built
   before the transaction for the version the trigger's last batch ran, and kept when that is
   still the latest);
2. enqueue, deduplicated per source message (`<kind>:<trigger path>:<event dedup key>`);
3. every event that cannot become a job goes to the quarantine with its raw bytes and the reason,
   as does an event over `max_event_bytes` (checked first, before the filters parse it);
4. fence: the row still names this instance (`holds_lease`), else `LeaseLost` and nothing is
   written. On PostgreSQL the fence share-locks the trigger row until the commit, so it comes
   last, and the batches of one trigger submitted at once (a pipelined listener) pass it one at
   a time: overlapping share locks would keep the lease's own ping waiting for ever.

A database error fails the whole batch (nothing is written), so the supervisor nacks it and the
source delivers it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID
from weakref import WeakValueDictionary

from gateway.jobs.enqueue import enqueue_batch
from gateway.listeners.lease import Lease, LeaseLost, TriggerRef
from gateway.listeners.sql_lease_store import holds_lease
from gateway.observability.metrics import GatewayMetrics
from gateway.store import Store
from gateway.triggers.event import Event
from gateway.triggers.event_limits import split_oversized
from gateway.triggers.filters import FilterLogic, load_filters, matches
from gateway.triggers.quarantine import quarantine_event
from gateway.triggers.runnables import RunnableShapes, prepare_jobs, prepare_jobs_ahead

logger = logging.getLogger(__name__)


class TriggerJobSink:
    """Turns the events of leased triggers into jobs, one fenced transaction per batch."""

    def __init__(
        self,
        store: Store,
        shapes: RunnableShapes | None = None,
        metrics: GatewayMetrics | None = None,
        max_event_bytes: int | None = None,
    ) -> None:
        self._store = store
        self._shapes = shapes if shapes is not None else RunnableShapes()
        self._metrics = metrics
        self._max_event_bytes = max_event_bytes
        self._fences: WeakValueDictionary[TriggerRef, asyncio.Lock] = WeakValueDictionary()

    async def submit(self, lease: Lease, events: Sequence[Event]) -> list[UUID]:
        """Enqueue one job per event that passes the filters; return their ids in event order.

        An event seen before returns the job it first became. Raises `LeaseLost`, writing
        nothing, when this instance no longer holds the lease.
        """
        trigger = lease.trigger
        within, oversized = split_oversized(events, self._max_event_bytes)
        kept = _passing_filters(lease.row, within)
        ahead = prepare_jobs_ahead(trigger, lease.row, kept, self._shapes)
        fence = self._fences.setdefault(trigger, asyncio.Lock())
        fencing = False
        try:
            async with self._store.transaction() as tx:
                prepared = await prepare_jobs(
                    tx, trigger, lease.row, kept, self._shapes, ahead=ahead
                )
                enqueued = (
                    []
                    if prepared.batch is None
                    else await enqueue_batch(tx, prepared.batch, known=prepared.scripts)
                )
                set_aside = (*oversized, *prepared.rejected)
                for rejected in set_aside:
                    await quarantine_event(tx, trigger, rejected.event, rejected.reason)
                # Held through the commit: see the module docstring.
                await fence.acquire()
                fencing = True
                if not await holds_lease(tx, lease):
                    raise LeaseLost(trigger, lease.server_id)
        finally:
            if fencing:
                fence.release()
        created = sum(1 for queued in enqueued if queued.created)
        if self._metrics is not None:
            self._metrics.batch_submitted(
                trigger,
                received=len(events),
                filtered=len(within) - len(kept),
                enqueued=created,
                deduplicated=len(enqueued) - created,
                quarantined=len(set_aside),
            )
        for rejected in set_aside:
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
            len(within) - len(kept),
            created,
            len(set_aside),
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

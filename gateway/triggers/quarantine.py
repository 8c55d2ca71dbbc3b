"""The quarantine: events that could not become jobs, kept with their raw bytes and the reason.

A redrive rebuilds the event from what was kept and sends it through the same job building as a
listener's batch (`prepare_jobs`, `enqueue` with the same dedup key), under the trigger's current
row, without a lease fence and without the trigger's filters (someone asked for this event).

What can be rebuilt: the payload of Kafka, NATS and MQTT events is the raw bytes themselves, and
that of SQS and WebSocket events their UTF-8 text; `info` is stored as it was. GCP (whose payload
is the base64 data as delivered), PostgreSQL (a decoded row change) and email (a parsed message)
events are kept but not rebuilt: a redrive of one reports that it cannot be done.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from gateway.errors import NotFound
from gateway.jobs.enqueue import enqueue
from gateway.listeners.lease import TriggerRef
from gateway.store import Json, Row, Store, Transaction, fetch_all, fetch_one
from gateway.store.storable import holds_unstorable_text
from gateway.triggers.event import Event
from gateway.triggers.runnables import RunnableShapes, prepare_jobs

logger = logging.getLogger(__name__)

MAX_PER_PAGE = 100
_BYTES_PAYLOAD_KINDS = frozenset({"kafka", "nats", "mqtt"})
_TEXT_PAYLOAD_KINDS = frozenset({"sqs", "websocket"})
REBUILDABLE_KINDS = _BYTES_PAYLOAD_KINDS | _TEXT_PAYLOAD_KINDS
"""Trigger kinds whose events a redrive can rebuild from the raw bytes and info."""


class RebuildError(ValueError):
    """A quarantined event cannot be turned back into an `Event`."""


@dataclass(frozen=True, slots=True)
class QuarantinedEvent:
    """One row of the quarantine."""

    id: int
    workspace_id: str
    trigger_kind: str
    trigger_path: str
    dedup_key: str | None
    raw: bytes
    info: Mapping[str, Any]
    error: str
    created_at: datetime
    redriven_at: datetime | None
    redriven_job_id: UUID | None

    @classmethod
    def from_row(cls, row: Row) -> QuarantinedEvent:
        """Build from an `event_quarantine` row."""
        return cls(
            id=row["id"],
            workspace_id=row["workspace_id"],
            trigger_kind=row["trigger_kind"],
            trigger_path=row["trigger_path"],
            dedup_key=row["dedup_key"],
            raw=bytes(row["raw"]),
            info=row["info"] or {},
            error=row["error"],
            created_at=row["created_at"],
            redriven_at=row["redriven_at"],
            redriven_job_id=row["redriven_job_id"],
        )

    def to_json(self) -> dict[str, Any]:
        """The event as JSON for the API and the CLI; the raw bytes in base64."""
        return {
            "id": self.id,
            "trigger_kind": self.trigger_kind,
            "trigger_path": self.trigger_path,
            "dedup_key": self.dedup_key,
            "error": self.error,
            "info": self.info,
            "raw_base64": base64.b64encode(self.raw).decode(),
            "created_at": self.created_at.isoformat(),
            "redriven_at": self.redriven_at.isoformat() if self.redriven_at else None,
            "redriven_job_id": str(self.redriven_job_id) if self.redriven_job_id else None,
        }


@dataclass(frozen=True, slots=True)
class Redrive:
    """What a redrive did: the job the event became, or why it still cannot become one."""

    job_id: UUID | None
    error: str | None


async def quarantine_event(
    tx: Transaction, trigger: TriggerRef, event: Event, reason: str
) -> int | None:
    """Keep `event` in `tx` with `reason`; its id, or None when a redelivery of it is waiting."""
    key = {
        "workspace_id": trigger.workspace_id,
        "trigger_kind": trigger.kind,
        "trigger_path": trigger.path,
        "dedup_key": event.dedup_key,
    }
    if event.dedup_key is not None and await tx.fetch_one("find_waiting_quarantined_event", **key):
        return None
    # A value a listener put in `info` that is not JSON is kept as its repr, not refused; so is
    # info or a reason PostgreSQL cannot store (a NUL, an unpaired surrogate), whole.
    info = json.loads(json.dumps(dict(event.info), default=repr))
    if holds_unstorable_text(info):
        info = {"repr": repr(dict(event.info))}
    row = await tx.fetch_one(
        "insert_quarantined_event",
        **key,
        raw=event.raw,
        info=Json(info),
        error=repr(reason) if holds_unstorable_text(reason) else reason,
    )
    assert row is not None
    return int(row["id"])


async def list_quarantined_events(
    store: Store,
    workspace_id: str,
    *,
    trigger_kind: str | None = None,
    trigger_path: str | None = None,
    page: int = 1,
    per_page: int = 30,
) -> list[QuarantinedEvent]:
    """A workspace's quarantined events, newest first, one page."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    rows = await fetch_all(
        store,
        "list_quarantined_events",
        workspace_id=workspace_id,
        trigger_kind=trigger_kind,
        trigger_path=trigger_path,
        limit=per_page,
        offset=(max(page, 1) - 1) * per_page,
    )
    return [QuarantinedEvent.from_row(row) for row in rows]


async def get_quarantined_event(store: Store, workspace_id: str, event_id: int) -> QuarantinedEvent:
    """One quarantined event, or NotFound."""
    row = await fetch_one(store, "get_quarantined_event", workspace_id=workspace_id, id=event_id)
    if row is None:
        raise NotFound(f"quarantined event {event_id} not found in workspace {workspace_id!r}")
    return QuarantinedEvent.from_row(row)


def rebuild_event(entry: QuarantinedEvent) -> Event:
    """The event as its listener made it; RebuildError for kinds whose payload is not kept."""
    kind = entry.trigger_kind
    payload: str | bytes
    if kind in _BYTES_PAYLOAD_KINDS:
        payload = entry.raw
    elif kind in _TEXT_PAYLOAD_KINDS:
        try:
            payload = entry.raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RebuildError(f"the raw bytes of this {kind} event are not UTF-8: {exc}") from None
    else:
        raise RebuildError(
            f"a {kind} event cannot be rebuilt from its raw bytes; "
            f"redrive supports {', '.join(sorted(REBUILDABLE_KINDS))}"
        )
    return Event(
        kind=kind, payload=payload, info=entry.info, dedup_key=entry.dedup_key, raw=entry.raw
    )


async def redrive(
    store: Store, workspace_id: str, event_id: int, *, shapes: RunnableShapes | None = None
) -> Redrive:
    """Submit a quarantined event again and mark it redriven with the job it became.

    Redriving an event already redriven returns its job. When the event still cannot become a
    job, the row stays, its `error` is replaced by the new reason, and that reason is returned.
    NotFound when there is no such quarantined event.
    """
    async with store.transaction() as tx:
        row = await tx.fetch_one("lock_quarantined_event", workspace_id=workspace_id, id=event_id)
        if row is None:
            raise NotFound(f"quarantined event {event_id} not found in workspace {workspace_id!r}")
        entry = QuarantinedEvent.from_row(row)
        if entry.redriven_job_id is not None:
            return Redrive(entry.redriven_job_id, None)
        outcome = await _submit(tx, entry, shapes if shapes is not None else RunnableShapes())
        if outcome.job_id is not None:
            await tx.execute(
                "mark_quarantined_event_redriven",
                workspace_id=workspace_id,
                id=event_id,
                job_id=outcome.job_id,
            )
        else:
            await tx.execute(
                "set_quarantined_event_error",
                workspace_id=workspace_id,
                id=event_id,
                error=outcome.error,
            )
    trigger = f"{workspace_id}/{entry.trigger_path}"
    extra = {"trigger": trigger, "kind": entry.trigger_kind}
    if outcome.job_id is not None:
        logger.info(
            "quarantined %s event %d of %s redriven as job %s",
            entry.trigger_kind,
            event_id,
            trigger,
            outcome.job_id,
            extra={"action": "event_redriven", **extra},
        )
    else:
        logger.warning(
            "quarantined %s event %d of %s still cannot become a job: %s",
            entry.trigger_kind,
            event_id,
            trigger,
            outcome.error,
            extra={"action": "redrive_failed", **extra},
        )
    return outcome


async def _submit(tx: Transaction, entry: QuarantinedEvent, shapes: RunnableShapes) -> Redrive:
    """Turn the quarantined event into a job under the trigger's current row."""
    try:
        event = rebuild_event(entry)
    except RebuildError as exc:
        return Redrive(None, str(exc))
    trigger = TriggerRef(entry.trigger_kind, entry.workspace_id, entry.trigger_path)
    # A rebuilt event's kind has a table: every rebuildable kind is a listener kind.
    row = await tx.fetch_one(
        f"get_{trigger.kind}_trigger", workspace_id=trigger.workspace_id, path=trigger.path
    )
    if row is None:
        return Redrive(None, f"{trigger.kind} trigger {trigger} no longer exists")
    prepared = await prepare_jobs(tx, trigger, row, [event], shapes)
    if prepared.rejected:
        return Redrive(None, prepared.rejected[0].reason)
    [queued] = await enqueue(tx, prepared.jobs, known=prepared.scripts)
    return Redrive(queued.job_id, None)

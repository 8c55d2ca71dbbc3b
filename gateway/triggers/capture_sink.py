"""From a capture listener's events to `capture` rows: `CaptureSink`, and `capture_supervisor`, the
lease supervisor that runs the capture listeners beside the trigger listeners.

Every event becomes one capture holding both arg shapes Windmill offers a runnable: `main_args`
(V2, no preprocessor) and `preprocessor_args` (`{"event": {...}}`), so the UI can show either.
A batch is written in one fenced transaction (`holds_capture_lease`); no job is created and no
filter is applied. Capture is a debugging aid: an event whose args cannot be built, or whose
payload is too large to keep, is skipped with a log line rather than holding up the source.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

from gateway.capture import check_main_args_size, insert_capture
from gateway.clock import SystemClock
from gateway.errors import InvalidInput
from gateway.listeners.base import AlertSink, ListenerFactory
from gateway.listeners.capture_lease_store import CaptureLeaseStore, holds_capture_lease
from gateway.listeners.lease import Lease, LeaseLost
from gateway.listeners.supervisor import LeaseSupervisor, LeaseTimings
from gateway.settings import Settings
from gateway.store import Store
from gateway.triggers.args import ArgsError, RunnableShape, build_args
from gateway.triggers.event import Event

logger = logging.getLogger(__name__)

MAIN_SHAPE: Final = RunnableShape()
"""A runnable without a preprocessor: V2 args."""

PREPROCESSOR_SHAPE: Final = RunnableShape(has_preprocessor=True, preprocessor_params=("event",))
"""A runnable whose preprocessor takes `event`: the V2 `{"event": {...}}` args."""


@dataclass(frozen=True, slots=True)
class _Captured:
    """One event's args in both shapes."""

    main_args: dict[str, Any]
    preprocessor_args: dict[str, Any]


class CaptureSink:
    """Records the events of capture listeners as captures, one fenced transaction per batch."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def submit(self, lease: Lease, events: Sequence[Event]) -> list[UUID]:
        """Insert one capture per event whose args can be built; no job, so no id is returned.

        Raises `LeaseLost`, writing nothing, when this instance no longer holds the capture.
        """
        trigger = lease.trigger
        captured = [c for c in (_capture(lease, event) for event in events) if c is not None]
        async with self._store.transaction() as tx:
            if not await holds_capture_lease(tx, lease):
                raise LeaseLost(trigger, lease.server_id)
            for capture in captured:
                await insert_capture(
                    tx,
                    trigger.workspace_id,
                    path=lease.row["path"],
                    is_flow=lease.row["is_flow"],
                    trigger_kind=trigger.kind,
                    main_args=capture.main_args,
                    preprocessor_args=capture.preprocessor_args,
                    created_by=lease.row["edited_by"],
                )
        logger.debug(
            "%s capture %s: %d events, %d captured",
            trigger.kind,
            trigger,
            len(events),
            len(captured),
            extra={"action": "batch_captured", "trigger": str(trigger), "kind": trigger.kind},
        )
        return []


def _capture(lease: Lease, event: Event) -> _Captured | None:
    """The event's args in both shapes, or None (logged) when they cannot be kept."""
    try:
        captured = _Captured(build_args(event, MAIN_SHAPE), build_args(event, PREPROCESSOR_SHAPE))
        check_main_args_size(captured.main_args)
    except (ArgsError, InvalidInput) as exc:
        trigger = lease.trigger
        logger.warning(
            "%s capture %s: event %s skipped: %s",
            trigger.kind,
            trigger,
            event.dedup_key or "without a dedup key",
            exc,
            extra={"action": "capture_skipped", "trigger": str(trigger), "kind": trigger.kind},
        )
        return None
    return captured


def capture_supervisor(
    settings: Settings,
    store: Store,
    factories: Mapping[str, ListenerFactory],
    alerts: AlertSink,
) -> LeaseSupervisor:
    """The supervisor of this instance's capture listeners, with the trigger lease timings."""
    return LeaseSupervisor(
        settings.instance_name,
        store=CaptureLeaseStore(store),
        factories=factories,
        sink=CaptureSink(store),
        alerts=alerts,
        timings=LeaseTimings.from_settings(settings),
        clock=SystemClock(),
    )

"""Alerts an operator should see, written to the `alerts` table."""

from __future__ import annotations

import logging

from gateway.listeners.lease import TriggerRef
from gateway.store import Store

logger = logging.getLogger(__name__)


def trigger_resource(trigger: TriggerRef) -> str:
    """How a trigger is named in `alerts.resource`: `<kind>_trigger/<path>`."""
    return f"{trigger.kind}_trigger/{trigger.path}"


class StoreAlertSink:
    """One open alert per trigger incident; resolved when the trigger recovers."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def raise_alert(self, trigger: TriggerRef, message: str) -> None:
        """Open an alert for `trigger` unless one is open already."""
        async with self._store.transaction() as tx:
            raised = await tx.fetch_one(
                "open_trigger_alert",
                message=message,
                workspace_id=trigger.workspace_id,
                resource=trigger_resource(trigger),
            )
        if raised is not None:
            logger.warning(
                "alert: %s",
                message,
                extra={"action": "alert_raised", "trigger": str(trigger), "kind": trigger.kind},
            )

    async def clear_alert(self, trigger: TriggerRef) -> None:
        """Resolve the open alerts of `trigger`."""
        async with self._store.transaction() as tx:
            await tx.execute(
                "close_trigger_alerts",
                workspace_id=trigger.workspace_id,
                resource=trigger_resource(trigger),
            )

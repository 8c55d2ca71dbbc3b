"""Trigger rows for the tests (written with the generated queries, changed behind their back),
and the events and leases the tests submit with."""

from __future__ import annotations

import uuid
from typing import Any

from gateway.listeners.lease import Lease, TriggerRef
from gateway.listeners.sql_lease_store import SqlLeaseStore
from gateway.store import Row, Store
from gateway.store.trigger_tables import COLUMN_DEFAULTS, TRIGGER_TABLES
from gateway.triggers.event import Event
from gateway.workspaces import ensure_workspace

from ..support import OWNER, WS

STALE_S = 15.0
FEED_URL = "ws://127.0.0.1:9/feed"

KIND_CONFIG: dict[str, dict[str, Any]] = {
    "websocket": {"url": FEED_URL},
    "kafka": {
        "kafka_resource_path": "u/alice/kafka",
        "topics": ["orders"],
        "group_id": "gateway-tests",
    },
}
"""The NOT NULL config columns of the kinds the tests write rows of."""


def unique_path(name: str) -> str:
    """A trigger path no other test uses."""
    return f"u/alice/{name}_{uuid.uuid4().hex[:8]}"


async def add_trigger(
    store: Store,
    name: str,
    *,
    kind: str = "websocket",
    script: str = "echo",
    mode: str = "enabled",
    **columns: Any,
) -> TriggerRef:
    """Create a `kind` trigger of the test user on script `f/t/<script>`, as the API would."""
    trigger = TriggerRef(kind, WS, unique_path(name))
    values = {
        **{column: COLUMN_DEFAULTS.get(column) for column in TRIGGER_TABLES[kind].writable_columns},
        **KIND_CONFIG[kind],
        "path": trigger.path,
        "script_path": f"f/t/{script}",
        "is_flow": False,
        "workspace_id": WS,
        "edited_by": OWNER.username,
        "email": OWNER.email,
        "permissioned_as": OWNER.permissioned_as,
        "mode": mode,
        **columns,
    }
    values.pop("edited_at")
    async with store.transaction() as tx:
        await ensure_workspace(tx, WS, OWNER)
        await tx.execute(f"upsert_{kind}_trigger", **values)
    return trigger


async def read_trigger(store: Store, trigger: TriggerRef) -> Row:
    """The trigger's row as the API reads it."""
    async with store.transaction() as tx:
        row = await tx.fetch_one(f"get_{trigger.kind}_trigger", workspace_id=WS, path=trigger.path)
    assert row is not None, f"no {trigger.kind} trigger {trigger}"
    return row


async def edit_trigger(store: Store, trigger: TriggerRef, **columns: Any) -> None:
    """Update the trigger as the API does (which clears its lease)."""
    row = await read_trigger(store, trigger)
    writable = set(TRIGGER_TABLES[trigger.kind].writable_columns) - {"edited_at"}
    values = {column: row[column] for column in writable}
    async with store.transaction() as tx:
        await tx.execute(f"upsert_{trigger.kind}_trigger", **{**values, **columns})


async def delete_trigger(store: Store, trigger: TriggerRef) -> None:
    """Delete the trigger as the API does."""
    async with store.transaction() as tx:
        await tx.execute(f"delete_{trigger.kind}_trigger", workspace_id=WS, path=trigger.path)


async def set_server_id(store: Store, trigger: TriggerRef, server_id: str | None) -> None:
    """Overwrite the lease holder with no side effect, as another instance's UPDATE does."""
    holder = "NULL" if server_id is None else f"'{server_id}'"
    await _update(store, trigger.kind, f"server_id = {holder}", f"path = '{trigger.path}'")


async def age_leases(store: Store, kind: str, seconds: float) -> None:
    """Make every held `kind` lease look last renewed `seconds` ago (on the database clock)."""
    await _update(
        store, kind, f"last_server_ping = gw_now_plus({-seconds})", "last_server_ping IS NOT NULL"
    )


async def _update(store: Store, kind: str, assignment: str, condition: str) -> None:
    # Test-made literals only: there is no named query for writes the gateway never makes.
    table = TRIGGER_TABLES[kind].table
    async with store.transaction() as tx:
        await tx.run_script(
            f"UPDATE {table} SET {assignment} WHERE workspace_id = '{WS}' AND {condition};"
        )


def frame(text: str, key: str | None) -> Event:
    """A WebSocket text frame from the feed the test triggers listen to."""
    return Event("websocket", text, {"url": FEED_URL}, key, text.encode())


async def claim(store: Store, trigger: TriggerRef, server_id: str = "gw-a") -> Lease:
    """The lease of `trigger` (the only free trigger of its kind), claimed by `server_id`."""
    [lease] = await SqlLeaseStore(store).claim_stale(trigger.kind, server_id, STALE_S)
    assert lease.trigger == trigger
    return lease

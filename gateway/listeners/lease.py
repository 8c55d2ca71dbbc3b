"""The lease seam: which gateway instance listens to which trigger.

Windmill's protocol (claim stale rows, heartbeat, stop when the row no longer names us), with
fencing on the job insert. The database layer implements `LeaseStore`; `memory.MemoryLeaseStore`
is its in-memory twin. Every time comparison in a store uses the database clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway import errors

LEASED_MODES = ("enabled", "suspended")
"""Trigger modes whose source is consumed (suspended triggers park their jobs, not their events)."""

CONNECTING = "Connecting..."
"""The status a claim writes into `error` until the listener has connected."""


@dataclass(frozen=True, slots=True)
class TriggerRef:
    """Identifies one trigger row: its kind (the table) and its primary key."""

    kind: str
    workspace_id: str
    path: str

    def __str__(self) -> str:
        return f"{self.workspace_id}/{self.path}"


@dataclass(frozen=True, slots=True)
class Lease:
    """A trigger this instance claimed, with the row as it was when claimed."""

    trigger: TriggerRef
    server_id: str
    # The row's config columns, mode, script_path, ...; left out of equality (a lease is who holds
    # what) and of the repr (rows are large and carry configuration).
    row: Mapping[str, Any] = field(compare=False, repr=False)


class LeaseLost(errors.LeaseLost):
    """This instance no longer holds the trigger's lease: stop consuming it, create no job."""

    def __init__(self, trigger: TriggerRef, server_id: str) -> None:
        super().__init__(
            f"{trigger.kind} trigger {trigger} is no longer held by {server_id}: it was edited, "
            "disabled or deleted, or another instance took it over; its events are left to the "
            "current holder"
        )
        self.trigger = trigger
        self.server_id = server_id


class LeaseStore(Protocol):
    """The trigger rows' lease columns (`server_id`, `last_server_ping`, `error`)."""

    async def claim_stale(self, kind: str, server_id: str, stale_after_s: float) -> list[Lease]:
        """Claim the `kind` triggers nobody holds; return the ones this call won.

        Candidates have a mode in `LEASED_MODES` and a `last_server_ping` that is NULL or older
        than `stale_after_s`. They are shuffled, then each is taken by a conditional UPDATE
        (same condition) that sets `server_id`, `last_server_ping = now()` and
        `error = CONNECTING`.
        """
        ...

    async def ping(self, lease: Lease, status: str | None) -> bool:
        """Renew the lease and write `status` into `error` (None when healthy).

        False when no row matched (`server_id` is not ours or the mode is not leased): the
        trigger was edited, disabled, deleted or taken.
        """
        ...

    async def reset_for_restart(self, trigger: TriggerRef) -> None:
        """Set `last_server_ping = NULL` where `server_id IS NULL`.

        An edit clears `server_id`; this makes the edited trigger claimable at once instead of
        after the staleness window.
        """
        ...

    async def release(self, lease: Lease) -> None:
        """Clear `server_id` and `last_server_ping` if the lease is still ours (on shutdown)."""
        ...

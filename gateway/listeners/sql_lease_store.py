"""The lease protocol on the trigger tables: `SqlLeaseStore`, and `holds_lease`, the job fence.

Every leased kind has the same named queries in `leases.sql` (`claim_kafka_trigger`, ...), so the
kind only picks a query name; which kinds exist and which table each one is comes from
`TRIGGER_TABLES`. Staleness is measured on the database clock (`now()`, `gw_now_plus`), never on
this process's.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from types import MappingProxyType

from gateway.listeners.lease import CONNECTING, Lease, TriggerRef
from gateway.store import Store, Transaction, execute, fetch_all
from gateway.store.trigger_tables import LEASED_KINDS, TRIGGER_TABLES

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _LeaseQueries:
    """The names of one leased kind's queries."""

    stale: str
    claim: str
    get: str
    ping: str
    reset: str
    release: str
    fence: str

    @classmethod
    def of(cls, kind: str) -> _LeaseQueries:
        """The queries of `kind`; ValueError when `kind` has no leased table."""
        table = TRIGGER_TABLES.get(kind)
        if table is None or not table.leased:
            raise ValueError(
                f"{kind!r} is not a leased trigger kind; the leased kinds are "
                f"{', '.join(LEASED_KINDS)}"
            )
        return cls(
            stale=f"list_stale_{kind}_triggers",
            claim=f"claim_{kind}_trigger",
            get=f"get_{kind}_trigger",
            ping=f"ping_{kind}_trigger",
            reset=f"reset_{kind}_trigger_for_restart",
            release=f"release_{kind}_trigger",
            fence=f"fence_{kind}_trigger",
        )


class SqlLeaseStore:
    """A `LeaseStore` over the trigger tables of `store`, for every kind in `LEASED_KINDS`."""

    def __init__(self, store: Store, rng: random.Random | None = None) -> None:
        self._store = store
        self._rng = rng if rng is not None else random.Random()

    async def claim_stale(self, kind: str, server_id: str, stale_after_s: float) -> list[Lease]:
        """Claim the free or stale `kind` triggers, each by its own conditional UPDATE."""
        queries = _LeaseQueries.of(kind)
        candidates = await fetch_all(self._store, queries.stale, stale_after_s=stale_after_s)
        # Instances that start together try the rows in different orders and so spread them.
        self._rng.shuffle(candidates)
        won: list[Lease] = []
        for candidate in candidates:
            trigger = TriggerRef(kind, candidate["workspace_id"], candidate["path"])
            lease = await self._claim_one(queries, trigger, server_id, stale_after_s)
            if lease is None:
                logger.debug(
                    "%s trigger %s is already being listened to",
                    kind,
                    trigger,
                    extra={"action": "claim_lost", "trigger": str(trigger), "kind": kind},
                )
            else:
                won.append(lease)
        return won

    async def _claim_one(
        self, queries: _LeaseQueries, trigger: TriggerRef, server_id: str, stale_after_s: float
    ) -> Lease | None:
        """Take one candidate if nobody renewed or took it since it was listed."""
        key = {"workspace_id": trigger.workspace_id, "path": trigger.path}
        async with self._store.transaction() as tx:
            taken = await tx.fetch_one(
                queries.claim,
                **key,
                server_id=server_id,
                status=CONNECTING,
                stale_after_s=stale_after_s,
            )
            if taken is None:
                return None
            row = await tx.fetch_one(queries.get, **key)
        # The UPDATE above matched the row in this transaction, so the read finds it.
        assert row is not None
        return Lease(trigger, server_id, MappingProxyType(row))

    async def ping(self, lease: Lease, status: str | None) -> bool:
        """Renew the lease and write `status`; False when the row no longer names the holder."""
        trigger = lease.trigger
        renewed = await execute(
            self._store,
            _LeaseQueries.of(trigger.kind).ping,
            workspace_id=trigger.workspace_id,
            path=trigger.path,
            server_id=lease.server_id,
            status=status,
        )
        return renewed > 0

    async def reset_for_restart(self, trigger: TriggerRef) -> None:
        """Make an edited (unowned) trigger claimable at once."""
        await execute(
            self._store,
            _LeaseQueries.of(trigger.kind).reset,
            workspace_id=trigger.workspace_id,
            path=trigger.path,
        )

    async def release(self, lease: Lease) -> None:
        """Give the lease back if it is still the holder's."""
        trigger = lease.trigger
        await execute(
            self._store,
            _LeaseQueries.of(trigger.kind).release,
            workspace_id=trigger.workspace_id,
            path=trigger.path,
            server_id=lease.server_id,
        )


async def holds_lease(tx: Transaction, lease: Lease) -> bool:
    """Whether the row still names the lease's holder with a consumed mode, checked in `tx`.

    On PostgreSQL the row is share-locked until `tx` ends, so a takeover waits for the commit
    and jobs written in `tx` can never postdate it; SQLite's single writer needs no lock.
    """
    trigger = lease.trigger
    row = await tx.fetch_one(
        _LeaseQueries.of(trigger.kind).fence,
        workspace_id=trigger.workspace_id,
        path=trigger.path,
        server_id=lease.server_id,
    )
    return row is not None

"""The lease protocol on `capture_config`: `CaptureLeaseStore`, and `holds_capture_lease`, the
capture fence.

Capture listeners follow the trigger rules (claim free or stale rows by a conditional UPDATE,
shuffled; renew by `server_id`) with one more condition: the UI must have pinged the config within
`client_liveness_s`, for claims and renewals alike, so a closed browser tab stops its listener
within that window. Only configs with a `trigger_config` are claimed.

A capture is leased as `TriggerRef(trigger_kind, workspace, "<script|flow>/<runnable path>")`,
and its lease's row looks like a trigger row to the listener factories: the `trigger_config` keys
plus the shared trigger columns. Filters are not applied in capture mode, so `filters` is empty.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from gateway.capture import is_flow_of, runnable_kind_of
from gateway.listeners.lease import CONNECTING, Lease, TriggerRef
from gateway.store import Store, Transaction, execute, fetch_all
from gateway.store.trigger_tables import LEASED_KINDS

logger = logging.getLogger(__name__)

CLIENT_LIVENESS_S = 10.0
"""How recently the UI must have pinged a capture config for its listener to run."""


def capture_ref(kind: str, workspace_id: str, path: str, is_flow: bool) -> TriggerRef:
    """The lease identity of the runnable's `kind` capture config."""
    return TriggerRef(kind, workspace_id, f"{runnable_kind_of(is_flow)}/{path}")


def _config_key(trigger: TriggerRef) -> dict[str, Any]:
    """The primary key of the capture config leased as `trigger`."""
    runnable_kind, _, path = trigger.path.partition("/")
    return {
        "workspace_id": trigger.workspace_id,
        "path": path,
        "is_flow": is_flow_of(runnable_kind),
        "trigger_kind": trigger.kind,
    }


def _listener_row(config: Mapping[str, Any]) -> dict[str, Any]:
    """A `capture_config` row in the shape of a trigger row, for the listener factories."""
    return {
        **config["trigger_config"],
        "workspace_id": config["workspace_id"],
        "path": config["path"],
        "script_path": config["path"],
        "is_flow": config["is_flow"],
        "mode": "enabled",
        "email": config["email"],
        "edited_by": config["owner"],
        "filters": [],
    }


class CaptureLeaseStore:
    """A `LeaseStore` over the capture configs of `store`, for every kind in `LEASED_KINDS`."""

    def __init__(
        self,
        store: Store,
        *,
        client_liveness_s: float = CLIENT_LIVENESS_S,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._client_liveness_s = client_liveness_s
        self._rng = rng if rng is not None else random.Random()

    async def claim_stale(self, kind: str, server_id: str, stale_after_s: float) -> list[Lease]:
        """Claim the watched `kind` capture configs nobody holds, each by a conditional UPDATE."""
        if kind not in LEASED_KINDS:
            raise ValueError(
                f"{kind!r} captures have no listener; the leased kinds are "
                f"{', '.join(LEASED_KINDS)}"
            )
        candidates = await fetch_all(
            self._store,
            "list_claimable_capture_configs",
            trigger_kind=kind,
            client_liveness_s=self._client_liveness_s,
            stale_after_s=stale_after_s,
        )
        # Instances that start together try the rows in different orders and so spread them.
        self._rng.shuffle(candidates)
        won: list[Lease] = []
        for candidate in candidates:
            trigger = capture_ref(
                kind, candidate["workspace_id"], candidate["path"], candidate["is_flow"]
            )
            lease = await self._claim_one(trigger, server_id, stale_after_s)
            if lease is None:
                logger.debug(
                    "%s capture %s is already being listened to",
                    kind,
                    trigger,
                    extra={"action": "claim_lost", "trigger": str(trigger), "kind": kind},
                )
            else:
                won.append(lease)
        return won

    async def _claim_one(
        self, trigger: TriggerRef, server_id: str, stale_after_s: float
    ) -> Lease | None:
        """Take one candidate if it is still watched and nobody renewed or took it since."""
        key = _config_key(trigger)
        async with self._store.transaction() as tx:
            taken = await tx.fetch_one(
                "claim_capture_lease",
                **key,
                server_id=server_id,
                status=CONNECTING,
                client_liveness_s=self._client_liveness_s,
                stale_after_s=stale_after_s,
            )
            if taken is None:
                return None
            config = await tx.fetch_one("get_capture_config", **key)
        # The UPDATE above matched the row in this transaction, so the read finds it.
        assert config is not None
        return Lease(trigger, server_id, MappingProxyType(_listener_row(config)))

    async def ping(self, lease: Lease, status: str | None) -> bool:
        """Renew the lease and write `status`; False when lost or the UI stopped pinging."""
        renewed = await execute(
            self._store,
            "renew_capture_lease",
            **_config_key(lease.trigger),
            server_id=lease.server_id,
            status=status,
            client_liveness_s=self._client_liveness_s,
        )
        return renewed > 0

    async def reset_for_restart(self, trigger: TriggerRef) -> None:
        """Make an edited (unowned) capture config claimable at once."""
        await execute(self._store, "reset_capture_lease_for_restart", **_config_key(trigger))

    async def release(self, lease: Lease) -> None:
        """Give the lease back if it is still the holder's."""
        await execute(
            self._store,
            "release_capture_lease",
            **_config_key(lease.trigger),
            server_id=lease.server_id,
        )


async def holds_capture_lease(tx: Transaction, lease: Lease) -> bool:
    """Whether the capture config still names the lease's holder, checked in `tx`.

    On PostgreSQL the row is share-locked until `tx` ends, so a takeover waits for the commit.
    """
    row = await tx.fetch_one(
        "fence_capture_lease", **_config_key(lease.trigger), server_id=lease.server_id
    )
    return row is not None

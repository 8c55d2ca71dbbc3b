"""One lease contract, kept by the in-memory twin and by `SqlLeaseStore` on both dialects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import pytest

from gateway.clock import FakeClock
from gateway.listeners.lease import CONNECTING, Lease, LeaseStore, TriggerRef
from gateway.listeners.memory import MemoryLeaseStore
from gateway.listeners.sql_lease_store import SqlLeaseStore, holds_lease
from gateway.store import Store, open_store

from ..support import WS
from .support import (
    STALE_S,
    add_trigger,
    age_leases,
    delete_trigger,
    edit_trigger,
    read_trigger,
    set_server_id,
    unique_path,
)


class LeaseWorld(Protocol):
    """Trigger rows behind a lease store, and the other writers of those rows."""

    leases: LeaseStore
    other_instance: LeaseStore
    """A second instance's store on the same rows (its own connection where there is one)."""

    async def add(self, name: str, *, kind: str = "websocket", mode: str = "enabled") -> TriggerRef:
        """Create an unclaimed trigger row."""
        ...

    async def edit(self, trigger: TriggerRef, **columns: Any) -> None:
        """Update the row as the management API does (clearing its lease)."""
        ...

    async def delete(self, trigger: TriggerRef) -> None:
        """Delete the row."""
        ...

    async def set_server_id(self, trigger: TriggerRef, server_id: str | None) -> None:
        """Overwrite the holder with no side effect."""
        ...

    async def age(self, seconds: float) -> None:
        """Let `seconds` pass on the store's clock since the latest claim or ping."""
        ...

    async def row(self, trigger: TriggerRef) -> Mapping[str, Any]:
        """The row as stored now."""
        ...

    async def holds(self, lease: Lease) -> bool:
        """The fence a job insert checks."""
        ...


class MemoryWorld:
    """The twin: rows in a dict, a virtual clock as the database clock."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.store = MemoryLeaseStore(self.clock)
        self.leases: LeaseStore = self.store
        self.other_instance: LeaseStore = self.store

    async def add(self, name: str, *, kind: str = "websocket", mode: str = "enabled") -> TriggerRef:
        trigger = TriggerRef(kind, WS, unique_path(name))
        self.store.add(trigger, mode=mode, script_path="f/t/echo")
        return trigger

    async def edit(self, trigger: TriggerRef, **columns: Any) -> None:
        self.store.edit(trigger, **columns)

    async def delete(self, trigger: TriggerRef) -> None:
        self.store.delete(trigger)

    async def set_server_id(self, trigger: TriggerRef, server_id: str | None) -> None:
        self.store.write(trigger, server_id=server_id)

    async def age(self, seconds: float) -> None:
        await self.clock.advance(seconds)

    async def row(self, trigger: TriggerRef) -> Mapping[str, Any]:
        return self.store.row(trigger)

    async def holds(self, lease: Lease) -> bool:
        return await self.store.holds(lease)


class SqlWorld:
    """`SqlLeaseStore` on a real database; the other instance has its own connections."""

    def __init__(self, store: Store, other: Store) -> None:
        self.store = store
        self.leases: LeaseStore = SqlLeaseStore(store)
        self.other_instance: LeaseStore = SqlLeaseStore(other)

    async def add(self, name: str, *, kind: str = "websocket", mode: str = "enabled") -> TriggerRef:
        return await add_trigger(self.store, name, kind=kind, mode=mode)

    async def edit(self, trigger: TriggerRef, **columns: Any) -> None:
        await edit_trigger(self.store, trigger, **columns)

    async def delete(self, trigger: TriggerRef) -> None:
        await delete_trigger(self.store, trigger)

    async def set_server_id(self, trigger: TriggerRef, server_id: str | None) -> None:
        await set_server_id(self.store, trigger, server_id)

    async def age(self, seconds: float) -> None:
        for kind in ("websocket", "kafka"):
            await age_leases(self.store, kind, seconds)

    async def row(self, trigger: TriggerRef) -> Mapping[str, Any]:
        return await read_trigger(self.store, trigger)

    async def holds(self, lease: Lease) -> bool:
        async with self.store.transaction() as tx:
            return await holds_lease(tx, lease)


class LeaseStoreContract:
    """The behaviour every `LeaseStore` shares; subclasses provide the `world` fixture."""

    async def test_claim_takes_the_free_consumable_triggers_of_its_kind(
        self, world: LeaseWorld
    ) -> None:
        enabled = await world.add("orders")
        suspended = await world.add("refunds", mode="suspended")
        await world.add("audit", mode="disabled")
        await world.add("events", kind="kafka")

        won = await world.leases.claim_stale("websocket", "gw-a", STALE_S)

        assert {lease.trigger for lease in won} == {enabled, suspended}
        for lease in won:
            assert lease.server_id == "gw-a"
            assert lease.row["script_path"] == "f/t/echo"
            row = await world.row(lease.trigger)
            assert (row["server_id"], row["error"]) == ("gw-a", CONNECTING)
            assert row["last_server_ping"] is not None

    async def test_a_fresh_lease_stays_and_a_stale_one_is_taken_over(
        self, world: LeaseWorld
    ) -> None:
        trigger = await world.add("orders")
        [first] = await world.leases.claim_stale("websocket", "gw-a", STALE_S)
        assert await world.other_instance.claim_stale("websocket", "gw-b", STALE_S) == []

        await world.age(STALE_S + 1)
        [second] = await world.other_instance.claim_stale("websocket", "gw-b", STALE_S)

        assert second.trigger == trigger
        assert (await world.row(trigger))["server_id"] == "gw-b"
        assert await world.holds(second)
        assert not await world.holds(first)
        assert not await world.leases.ping(first, None)

    async def test_ping_renews_the_lease_and_writes_the_status(self, world: LeaseWorld) -> None:
        trigger = await world.add("orders")
        [lease] = await world.leases.claim_stale("websocket", "gw-a", STALE_S)

        await world.age(STALE_S - 5)
        assert await world.leases.ping(lease, None)
        assert (await world.row(trigger))["error"] is None
        await world.age(STALE_S - 5)
        assert await world.other_instance.claim_stale("websocket", "gw-b", STALE_S) == []

        assert await world.leases.ping(lease, "connection lost")
        assert (await world.row(trigger))["error"] == "connection lost"

    @pytest.mark.parametrize("change", ["edited", "disabled", "deleted", "taken"])
    async def test_ping_and_fence_fail_once_the_row_no_longer_names_the_holder(
        self, world: LeaseWorld, change: str
    ) -> None:
        trigger = await world.add("orders")
        [lease] = await world.leases.claim_stale("websocket", "gw-a", STALE_S)
        assert await world.holds(lease)
        match change:
            case "edited":
                await world.edit(trigger, script_path="f/t/other")
            case "disabled":
                await world.edit(trigger, mode="disabled")
            case "deleted":
                await world.delete(trigger)
            case "taken":
                await world.set_server_id(trigger, "gw-b")

        assert not await world.leases.ping(lease, None)
        assert not await world.holds(lease)

    async def test_reset_for_restart_only_frees_a_row_nobody_holds(self, world: LeaseWorld) -> None:
        unowned = await world.add("orders")
        taken = await world.add("payments")
        await world.leases.claim_stale("websocket", "gw-a", STALE_S)
        await world.set_server_id(unowned, None)
        await world.set_server_id(taken, "gw-b")

        await world.leases.reset_for_restart(unowned)
        await world.leases.reset_for_restart(taken)

        assert (await world.row(unowned))["last_server_ping"] is None
        assert (await world.row(taken))["last_server_ping"] is not None

    async def test_an_edited_trigger_is_claimable_at_once_after_the_reset(
        self, world: LeaseWorld
    ) -> None:
        trigger = await world.add("orders")
        [lease] = await world.leases.claim_stale("websocket", "gw-a", STALE_S)
        await world.edit(trigger, script_path="f/t/other")

        assert not await world.leases.ping(lease, None)
        await world.leases.reset_for_restart(trigger)
        [again] = await world.other_instance.claim_stale("websocket", "gw-b", STALE_S)

        assert again.trigger == trigger
        assert again.row["script_path"] == "f/t/other"

    async def test_release_frees_only_a_lease_still_held(self, world: LeaseWorld) -> None:
        trigger = await world.add("orders")
        [lease] = await world.leases.claim_stale("websocket", "gw-a", STALE_S)
        await world.set_server_id(trigger, "gw-b")

        await world.leases.release(lease)
        assert (await world.row(trigger))["server_id"] == "gw-b"

        await world.set_server_id(trigger, "gw-a")
        await world.leases.release(lease)
        row = await world.row(trigger)
        assert (row["server_id"], row["last_server_ping"]) == (None, None)

    async def test_two_instances_never_both_win_a_trigger(self, world: LeaseWorld) -> None:
        triggers = {await world.add(f"t{n}") for n in range(20)}

        won_a, won_b = await asyncio.gather(
            world.leases.claim_stale("websocket", "gw-a", STALE_S),
            world.other_instance.claim_stale("websocket", "gw-b", STALE_S),
        )

        a = {lease.trigger for lease in won_a}
        b = {lease.trigger for lease in won_b}
        assert not a & b
        assert a | b == triggers


class TestMemoryLeaseStore(LeaseStoreContract):
    """The twin keeps the contract."""

    @pytest.fixture
    def world(self) -> MemoryWorld:
        return MemoryWorld()


class TestSqlLeaseStore(LeaseStoreContract):
    """`SqlLeaseStore` keeps the contract on SQLite and on PostgreSQL."""

    @pytest.fixture
    async def world(self, store: Store, database_url: str) -> AsyncIterator[SqlWorld]:
        other = await open_store(database_url)
        try:
            yield SqlWorld(store, other)
        finally:
            await other.close()

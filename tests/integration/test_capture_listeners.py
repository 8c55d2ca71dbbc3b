"""Capture listeners: the lease on `capture_config` (with the UI's liveness ping) and the real
supervisor recording a source's messages as captures, on both dialects."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from gateway import capture
from gateway.clock import SystemClock
from gateway.listeners.base import Listener
from gateway.listeners.capture_lease_store import (
    CLIENT_LIVENESS_S,
    CaptureLeaseStore,
    capture_ref,
    holds_capture_lease,
)
from gateway.listeners.lease import CONNECTING, Lease, LeaseLost, TriggerRef
from gateway.listeners.memory import MemorySource, RecordingAlertSink
from gateway.listeners.supervisor import LeaseSupervisor, LeaseTimings
from gateway.store import Row, Store
from gateway.triggers.capture_sink import CaptureSink
from gateway.triggers.event import Event
from gateway.workspaces import ensure_workspace

from .support import OWNER, WS, eventually

STALE_S = 15.0
KAFKA_CONFIG = {"kafka_resource_path": "u/alice/kafka", "topics": ["orders"], "group_id": "g"}
KAFKA_INFO = {"brokers": ["b1:9092"], "topic": "orders", "group_id": "g"}
TIMINGS = LeaseTimings(
    claim_interval_s=0.5,
    ping_interval_s=0.2,
    stale_after_s=2.0,
    backoff_base_s=0.1,
    backoff_cap_s=1,
)


async def add_config(
    store: Store, *, is_flow: bool = False, config: dict[str, Any] = KAFKA_CONFIG, path: str = ""
) -> str:
    """Write a Kafka capture config of a new runnable (or of `path`) as the API does."""
    path = path or f"u/alice/orders_{uuid.uuid4().hex[:8]}"
    async with store.transaction() as tx:
        await ensure_workspace(tx, WS, OWNER)
        await capture.set_config(
            tx,
            WS,
            trigger_kind="kafka",
            path=path,
            is_flow=is_flow,
            trigger_config=config,
            owner=OWNER.username,
            email=OWNER.email,
        )
    return path


async def client_ping(store: Store, path: str, runnable_kind: str = "script") -> None:
    """The UI's ping: it still watches the capture."""
    async with store.transaction() as tx:
        await capture.ping_config(tx, WS, "kafka", runnable_kind, path)


async def age(store: Store, column: str, seconds: float) -> None:
    """Make every `column` ping of the workspace look `seconds` old (on the database clock)."""
    # Test-made literals only: there is no named query for writes the gateway never makes.
    async with store.transaction() as tx:
        await tx.run_script(
            f"UPDATE capture_config SET {column} = gw_now_plus({-seconds}) "
            f"WHERE workspace_id = '{WS}' AND {column} IS NOT NULL;"
        )


async def config_row(store: Store, path: str) -> Row:
    """The script's Kafka capture config as stored now."""
    [row] = await capture.get_configs(store, WS, "script", path)
    return row


async def test_a_config_the_client_does_not_ping_is_not_claimed(store: Store) -> None:
    leases = CaptureLeaseStore(store)
    path = await add_config(store)
    assert await leases.claim_stale("kafka", "gw-a", STALE_S) == []

    await client_ping(store, path)
    await age(store, "last_client_ping", CLIENT_LIVENESS_S + 1)
    assert await leases.claim_stale("kafka", "gw-a", STALE_S) == []

    await client_ping(store, path)
    [lease] = await leases.claim_stale("kafka", "gw-a", STALE_S)
    assert lease.trigger == TriggerRef("kafka", WS, f"script/{path}")


async def test_a_claimed_capture_is_leased_with_a_row_shaped_like_a_trigger(store: Store) -> None:
    path = await add_config(store)
    await add_config(store, path=path, is_flow=True, config={**KAFKA_CONFIG, "group_id": "f"})
    await client_ping(store, path)
    await client_ping(store, path, "flow")

    leases = await CaptureLeaseStore(store).claim_stale("kafka", "gw-a", STALE_S)

    by_trigger = {lease.trigger: lease.row for lease in leases}
    assert by_trigger[capture_ref("kafka", WS, path, is_flow=False)] == {
        **KAFKA_CONFIG,
        "workspace_id": WS,
        "path": path,
        "script_path": path,
        "is_flow": False,
        "mode": "enabled",
        "email": OWNER.email,
        "edited_by": OWNER.username,
        "filters": [],
    }
    assert by_trigger[TriggerRef("kafka", WS, f"flow/{path}")]["group_id"] == "f"
    row = await config_row(store, path)
    assert (row["server_id"], row["error"]) == ("gw-a", CONNECTING)


async def test_a_held_capture_is_claimed_by_another_instance_only_once_stale(store: Store) -> None:
    path = await add_config(store)
    await client_ping(store, path)
    await CaptureLeaseStore(store).claim_stale("kafka", "gw-a", STALE_S)
    other = CaptureLeaseStore(store)
    assert await other.claim_stale("kafka", "gw-b", STALE_S) == []

    await age(store, "last_server_ping", STALE_S + 1)

    [taken] = await other.claim_stale("kafka", "gw-b", STALE_S)
    assert taken.server_id == "gw-b"


async def test_a_capture_stops_being_renewed_when_the_client_stops_pinging(store: Store) -> None:
    leases = CaptureLeaseStore(store)
    path = await add_config(store)
    await client_ping(store, path)
    [lease] = await leases.claim_stale("kafka", "gw-a", STALE_S)
    assert await leases.ping(lease, None)

    # The browser tab closed: its last ping ages past the liveness window.
    await age(store, "last_client_ping", CLIENT_LIVENESS_S + 1)
    assert not await leases.ping(lease, None)
    await leases.reset_for_restart(lease.trigger)

    # The tab is back: the abandoned lease is taken over once stale, as for triggers.
    await client_ping(store, path)
    assert await leases.claim_stale("kafka", "gw-b", STALE_S) == []
    await age(store, "last_server_ping", STALE_S + 1)
    [taken] = await leases.claim_stale("kafka", "gw-b", STALE_S)
    assert taken.trigger == lease.trigger


async def test_a_rewritten_config_is_claimable_at_once_with_its_new_row(store: Store) -> None:
    leases = CaptureLeaseStore(store)
    path = await add_config(store)
    await client_ping(store, path)
    [lease] = await leases.claim_stale("kafka", "gw-a", STALE_S)

    await add_config(store, path=path, config={**KAFKA_CONFIG, "topics": ["refunds"]})
    assert not await leases.ping(lease, None)
    await leases.reset_for_restart(lease.trigger)

    [restarted] = await leases.claim_stale("kafka", "gw-a", STALE_S)
    assert restarted.row["topics"] == ["refunds"]


async def test_a_released_capture_fences_its_sink_and_is_claimable_again(store: Store) -> None:
    leases = CaptureLeaseStore(store)
    path = await add_config(store)
    await client_ping(store, path)
    [lease] = await leases.claim_stale("kafka", "gw-a", STALE_S)
    async with store.transaction() as tx:
        assert await holds_capture_lease(tx, lease)

    await leases.release(lease)

    async with store.transaction() as tx:
        assert not await holds_capture_lease(tx, lease)
    with pytest.raises(LeaseLost):
        await CaptureSink(store).submit(lease, [kafka_message(b"late", 0)])
    assert await capture.list_captures(store, WS, "script", path) == []
    [again] = await leases.claim_stale("kafka", "gw-b", STALE_S)
    assert again.trigger == lease.trigger


async def test_kinds_without_a_listener_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="have no listener"):
        await CaptureLeaseStore(store).claim_stale("webhook", "gw-a", STALE_S)


def kafka_message(value: Any, offset: int) -> Event:
    """A message of the `orders` topic."""
    info = {**KAFKA_INFO, "partition": 0, "offset": offset}
    raw = value if isinstance(value, bytes) else str(value).encode()
    return Event("kafka", value, info, f"orders:0:{offset}", raw)


def capture_supervisor_on(
    store: Store, source: MemorySource, rows: list[Mapping[str, Any]]
) -> LeaseSupervisor:
    """The capture supervisor with `source` as its Kafka listener; `rows` gets each lease row."""

    def listen(lease: Lease) -> Listener:
        rows.append(lease.row)
        return source.listener()

    return LeaseSupervisor(
        "gw-capture",
        store=CaptureLeaseStore(store),
        factories={"kafka": listen},
        sink=CaptureSink(store),
        alerts=RecordingAlertSink(),
        timings=TIMINGS,
        clock=SystemClock(),
    )


async def keep_pinging(store: Store, path: str) -> None:
    """The UI, open on the capture."""
    while True:
        await client_ping(store, path)
        await asyncio.sleep(0.5)


async def test_published_messages_become_captures_in_both_shapes(store: Store) -> None:
    path = await add_config(store)
    source = MemorySource(batch_size=2)
    rows: list[Mapping[str, Any]] = []
    supervisor = capture_supervisor_on(store, source, rows)
    await client_ping(store, path)
    client = asyncio.create_task(keep_pinging(store, path), name="test:client-pings")
    await supervisor.start()
    try:
        large = b"x" * 50_000
        source.publish(
            kafka_message(b'{"a":1}', 0),
            kafka_message(large, 1),
            kafka_message("not bytes", 2),
            kafka_message(b'{"b":2}', 3),
        )

        async def all_acked() -> bool:
            return len(source.acked) == 4

        await eventually(all_acked)
    finally:
        client.cancel()
        await asyncio.wait([client])
        await supervisor.stop(drain_timeout_s=1.0)

    listed = await capture.list_captures(store, WS, "script", path)
    assert [row["main_args"] for row in listed] == [
        {"payload": "eyJiIjoyfQ=="},
        capture.TOO_BIG,
        {"payload": "eyJhIjoxfQ=="},
    ]
    newest = listed[0]
    event = {"payload": "eyJiIjoyfQ==", "kind": "kafka", **KAFKA_INFO, "partition": 0, "offset": 3}
    assert newest["preprocessor_args"] == {"event": event}
    assert (newest["trigger_kind"], newest["created_by"]) == ("kafka", OWNER.username)
    whole = await capture.get_capture(store, WS, listed[1]["id"])
    assert whole["main_args"] == {"payload": base64.b64encode(large).decode()}
    assert whole["preprocessor_args"]["event"]["offset"] == 1
    assert rows[0]["topics"] == ["orders"]
    assert rows[0]["script_path"] == path
    assert (await config_row(store, path))["server_id"] is None


async def test_closing_the_capture_tab_stops_its_listener(store: Store) -> None:
    path = await add_config(store)
    source = MemorySource()
    supervisor = capture_supervisor_on(store, source, [])
    await client_ping(store, path)
    await supervisor.start()
    try:
        assert supervisor.running() == {capture_ref("kafka", WS, path, is_flow=False)}

        await age(store, "last_client_ping", CLIENT_LIVENESS_S + 1)

        async def stopped() -> bool:
            return not supervisor.running()

        await eventually(stopped)
        assert await CaptureLeaseStore(store).claim_stale("kafka", "gw-b", 0.0) == []
    finally:
        await supervisor.stop(drain_timeout_s=1.0)

"""Capture configs and captures as the API reads and writes them, on both dialects."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from gateway import capture
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.listeners.capture_lease_store import CaptureLeaseStore
from gateway.store import Row, Store
from gateway.workspaces import Identity, ensure_workspace

from .support import OWNER, WS

KAFKA_CONFIG = {"kafka_resource_path": "u/alice/kafka", "topics": ["orders"], "group_id": "g"}
BOB = Identity("bob", "bob@example.com")


def unique_path(name: str) -> str:
    """A runnable path no other test uses."""
    return f"u/alice/{name}_{uuid.uuid4().hex[:8]}"


async def set_config(
    store: Store,
    path: str,
    *,
    kind: str = "kafka",
    is_flow: bool = False,
    config: Any = KAFKA_CONFIG,
    owner: Identity = OWNER,
) -> Row:
    """Write a capture config as the API does, creating the workspace first."""
    async with store.transaction() as tx:
        await ensure_workspace(tx, WS, OWNER)
        return await capture.set_config(
            tx,
            WS,
            trigger_kind=kind,
            path=path,
            is_flow=is_flow,
            trigger_config=config,
            owner=owner.username,
            email=owner.email,
        )


async def ping(store: Store, path: str, kind: str = "kafka", runnable_kind: str = "script") -> None:
    """The UI's ping for the capture."""
    async with store.transaction() as tx:
        await capture.ping_config(tx, WS, kind, runnable_kind, path)


async def add_capture(
    store: Store,
    path: str,
    main_args: Any,
    *,
    kind: str = "kafka",
    is_flow: bool = False,
    preprocessor_args: Any = None,
) -> int:
    """Record one capture of the runnable; its id."""
    async with store.transaction() as tx:
        await ensure_workspace(tx, WS, OWNER)
        return await capture.insert_capture(
            tx,
            WS,
            path=path,
            is_flow=is_flow,
            trigger_kind=kind,
            main_args=main_args,
            preprocessor_args=preprocessor_args,
            created_by=OWNER.username,
        )


async def test_set_config_returns_the_config_and_a_rewrite_resets_its_lease(store: Store) -> None:
    path = unique_path("orders")
    first = await set_config(store, path)
    assert first["trigger_config"] == KAFKA_CONFIG
    assert (first["owner"], first["email"], first["is_flow"]) == ("alice", OWNER.email, False)

    await ping(store, path)
    [lease] = await CaptureLeaseStore(store).claim_stale("kafka", "gw-a", 15.0)
    assert await CaptureLeaseStore(store).ping(lease, "Connecting...")

    changed = {**KAFKA_CONFIG, "topics": ["refunds"]}
    second = await set_config(store, path, config=changed, owner=BOB)

    assert second["trigger_config"] == changed
    assert (second["owner"], second["email"]) == ("bob", BOB.email)
    assert second["server_id"] is None
    assert second["error"] is None
    assert second["last_client_ping"] is not None
    assert not await CaptureLeaseStore(store).ping(lease, None)


async def test_a_listener_kind_needs_an_object_config_and_a_push_kind_none(store: Store) -> None:
    path = unique_path("orders")
    for config in (None, ["orders"], "orders"):
        with pytest.raises(InvalidInput, match="trigger_config"):
            await set_config(store, path, config=config)

    row = await set_config(store, path, kind="webhook", config=None)

    assert row["trigger_config"] is None


async def test_unknown_kinds_are_refused(store: Store) -> None:
    with pytest.raises(InvalidInput, match="trigger_kind"):
        await set_config(store, unique_path("x"), kind="carrier_pigeon")
    with pytest.raises(InvalidInput, match="runnable_kind"):
        await capture.get_configs(store, WS, "app", "u/alice/x")


async def test_ping_config_records_the_client_ping(store: Store) -> None:
    path = unique_path("orders")
    assert (await set_config(store, path))["last_client_ping"] is None

    await ping(store, path)

    [config] = await capture.get_configs(store, WS, "script", path)
    assert config["last_client_ping"] is not None


async def test_pinging_a_missing_config_is_not_found(store: Store) -> None:
    path = unique_path("orders")
    await set_config(store, path)
    with pytest.raises(NotFound, match="nats capture config"):
        await ping(store, path, kind="nats")
    with pytest.raises(NotFound):
        await ping(store, path, runnable_kind="flow")


async def test_get_configs_returns_one_config_per_kind_of_that_runnable_only(store: Store) -> None:
    path = unique_path("orders")
    await set_config(store, path)
    await set_config(store, path, kind="webhook", config=None)
    await set_config(store, path, is_flow=True, kind="mqtt", config={"subscribe_topics": []})

    scripts = await capture.get_configs(store, WS, "script", path)
    flows = await capture.get_configs(store, WS, "flow", path)

    assert [row["trigger_kind"] for row in scripts] == ["kafka", "webhook"]
    assert [row["trigger_kind"] for row in flows] == ["mqtt"]
    assert await capture.get_configs(store, WS, "script", unique_path("other")) == []


async def test_captures_are_listed_newest_first_by_page_and_kind(store: Store) -> None:
    path = unique_path("orders")
    ids = [await add_capture(store, path, {"n": n}) for n in range(5)]
    webhook_id = await add_capture(store, path, {"n": "hook"}, kind="webhook")
    await add_capture(store, path, {"n": "flow"}, is_flow=True)

    first = await capture.list_captures(store, WS, "script", path, "kafka", page=1, per_page=3)
    second = await capture.list_captures(store, WS, "script", path, "kafka", page=2, per_page=3)
    every = await capture.list_captures(store, WS, "script", path)

    assert [row["id"] for row in first + second] == ids[::-1]
    assert [row["main_args"] for row in first] == [{"n": 4}, {"n": 3}, {"n": 2}]
    assert [row["id"] for row in every] == [webhook_id, *ids[::-1]]
    assert {row["trigger_kind"] for row in every} == {"kafka", "webhook"}
    with pytest.raises(InvalidInput, match="page"):
        await capture.list_captures(store, WS, "script", path, page=0)


async def test_large_payloads_are_listed_as_too_big_and_read_whole_by_id(store: Store) -> None:
    path = unique_path("orders")
    large = {"payload": "x" * 50_000}
    small = {"payload": "x" * 1_000}
    large_id = await add_capture(store, path, large, preprocessor_args={"event": large})
    mixed_id = await add_capture(store, path, small, preprocessor_args={"event": large})
    small_id = await add_capture(store, path, small)

    rows = {row["id"]: row for row in await capture.list_captures(store, WS, "script", path)}

    assert rows[large_id]["main_args"] == capture.TOO_BIG
    assert rows[large_id]["preprocessor_args"] == capture.TOO_BIG
    assert rows[mixed_id]["main_args"] == small
    assert rows[mixed_id]["preprocessor_args"] == capture.TOO_BIG
    assert rows[small_id]["main_args"] == small
    assert rows[small_id]["preprocessor_args"] is None
    assert "main_args_too_big" not in rows[small_id]
    whole = await capture.get_capture(store, WS, large_id)
    assert whole["main_args"] == large
    assert whole["preprocessor_args"] == {"event": large}


async def test_main_args_of_512_kib_or_more_are_refused(store: Store) -> None:
    path = unique_path("orders")
    with pytest.raises(InvalidInput, match="under 512 KiB"):
        await add_capture(store, path, {"payload": "x" * 512 * 1024})

    assert await capture.list_captures(store, WS, "script", path) == []


async def test_a_capture_is_read_and_deleted_by_id_within_its_workspace(store: Store) -> None:
    path = unique_path("orders")
    capture_id = await add_capture(store, path, {"payload": "aGk="})

    row = await capture.get_capture(store, WS, capture_id)
    assert (row["path"], row["trigger_kind"], row["created_by"]) == (path, "kafka", "alice")
    assert row["created_at"] is not None
    with pytest.raises(NotFound):
        await capture.get_capture(store, "elsewhere", capture_id)

    async with store.transaction() as tx:
        await capture.delete_capture(tx, WS, capture_id)

    with pytest.raises(NotFound):
        await capture.get_capture(store, WS, capture_id)
    with pytest.raises(NotFound):
        async with store.transaction() as tx:
            await capture.delete_capture(tx, WS, capture_id)


async def test_captures_and_configs_follow_a_renamed_runnable(store: Store) -> None:
    path, new_path = unique_path("orders"), unique_path("renamed")
    await set_config(store, path)
    await ping(store, path)
    await CaptureLeaseStore(store).claim_stale("kafka", "gw-a", 15.0)
    capture_id = await add_capture(store, path, {"n": 1})
    flow_id = await add_capture(store, path, {"n": 2}, is_flow=True)

    async with store.transaction() as tx:
        await capture.move_captures_and_configs(tx, WS, "script", path, new_path)

    assert await capture.get_configs(store, WS, "script", path) == []
    [moved] = await capture.get_configs(store, WS, "script", new_path)
    assert (moved["trigger_config"], moved["server_id"]) == (KAFKA_CONFIG, None)
    assert moved["last_server_ping"] is None
    assert (await capture.get_capture(store, WS, capture_id))["path"] == new_path
    assert (await capture.get_capture(store, WS, flow_id))["path"] == path


async def test_a_move_onto_a_config_of_the_same_kind_is_a_conflict(store: Store) -> None:
    path, taken = unique_path("orders"), unique_path("taken")
    await set_config(store, path)
    await set_config(store, taken)
    capture_id = await add_capture(store, path, {"n": 1})

    with pytest.raises(Conflict, match="kafka"):
        async with store.transaction() as tx:
            await capture.move_captures_and_configs(tx, WS, "script", path, taken)

    assert len(await capture.get_configs(store, WS, "script", path)) == 1
    assert (await capture.get_capture(store, WS, capture_id))["path"] == path

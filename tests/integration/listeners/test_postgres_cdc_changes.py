"""The PostgreSQL listener on a real cluster: row changes, their values, and a missing slot or
publication."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.errors import NotFound
from gateway.listeners.base import Batch

from .brokers import next_batch
from .cdc_cluster import cdc_source, listener_on, resource_store, streaming

pytestmark = pytest.mark.integration


def rows(batch: Batch) -> list[dict[str, Any]]:
    """The payloads of the batch's events."""
    return [dict(event.payload) for event in batch.events]


async def test_inserts_updates_and_deletes_become_row_events(tmp_path: Path) -> None:
    async with cdc_source() as source, resource_store(tmp_path) as store:
        listener = listener_on(store, source.lease())
        async with streaming(listener) as stream:
            await source.run("INSERT INTO {full} (id, note) VALUES (1, 'a'), (2, 'b')")
            inserted = await next_batch(stream)
            await listener.ack(inserted)
            await source.run(
                "UPDATE {full} SET note = 'changed' WHERE id = 1",
                "DELETE FROM {full} WHERE id = 2",
            )
            changed = await next_batch(stream)
            await listener.ack(changed)

    assert [row["transaction_type"] for row in rows(inserted)] == ["insert", "insert"]
    assert rows(inserted)[0]["schema_name"] == "public"
    assert rows(inserted)[0]["table_name"] == source.full
    assert [(row["row"]["id"], row["row"]["note"]) for row in rows(inserted)] == [
        (1, "a"),
        (2, "b"),
    ]
    assert all(row["old_row"] is None for row in rows(inserted))
    update, delete = rows(changed)
    assert update["transaction_type"] == "update"
    assert (update["row"]["note"], update["old_row"]["note"]) == ("changed", "a")
    assert delete["transaction_type"] == "delete"
    assert (delete["row"]["id"], delete["row"]["note"], delete["old_row"]) == (2, "b", None)


async def test_without_replica_identity_full_updates_have_no_old_row(tmp_path: Path) -> None:
    async with cdc_source() as source, resource_store(tmp_path) as store:
        listener = listener_on(store, source.lease())
        async with streaming(listener) as stream:
            await source.run(
                "INSERT INTO {plain} (id, note) VALUES (1, 'a')",
                "UPDATE {plain} SET note = 'b' WHERE id = 1",
                "UPDATE {plain} SET id = 10 WHERE id = 1",
                "DELETE FROM {plain} WHERE id = 10",
            )
            batch = await next_batch(stream)

    _, same_key, new_key, delete = rows(batch)
    assert same_key["old_row"] is None
    assert new_key["old_row"] == {
        "id": 1, "amount": None, "at": None, "doc": None, "tags": None, "counts": None,
        "ok": None, "note": None,
    }  # fmt: skip
    assert new_key["row"]["id"] == 10
    assert delete["row"]["id"] == 10
    assert delete["row"]["note"] is None  # only the key of a deleted row is sent


async def test_column_values_keep_their_types(tmp_path: Path) -> None:
    async with cdc_source() as source, resource_store(tmp_path) as store:
        listener = listener_on(store, source.lease())
        async with streaming(listener) as stream:
            await source.run(
                "INSERT INTO {full} VALUES (1, 1234567890.05, '2024-01-15 14:30:00.25+02',"
                """ '{"a": [1, {"b": null}], "c": "d"}', '{"x y","q\\"z",NULL}', '{{1,2},{3,4}}',"""
                " true, 'héllo')",
                "INSERT INTO {full} (id) VALUES (2)",
            )
            batch = await next_batch(stream)

    values, nulls = (row["row"] for row in rows(batch))
    assert values == {
        "id": 1,
        "amount": "1234567890.05",
        "at": "2024-01-15T12:30:00.250000+00:00",
        "doc": {"a": [1, {"b": None}], "c": "d"},
        "tags": ["x y", 'q"z', None],
        "counts": [[1, 2], [3, 4]],
        "ok": True,
        "note": "héllo",
    }
    assert nulls == {
        "id": 2, "amount": None, "at": None, "doc": None, "tags": None, "counts": None,
        "ok": None, "note": None,
    }  # fmt: skip


async def test_an_unchanged_toast_value_comes_from_the_old_row_or_is_listed(
    tmp_path: Path,
) -> None:
    async with cdc_source() as source, resource_store(tmp_path) as store:
        await source.run(
            "ALTER TABLE {full} ALTER COLUMN note SET STORAGE EXTERNAL",
            "ALTER TABLE {plain} ALTER COLUMN note SET STORAGE EXTERNAL",
        )
        listener = listener_on(store, source.lease())
        async with streaming(listener) as stream:
            await source.run(
                "INSERT INTO {full} (id, note) VALUES (1, repeat('x', 5000))",
                "INSERT INTO {plain} (id, note) VALUES (1, repeat('y', 5000))",
            )
            await listener.ack(await next_batch(stream))
            await source.run(
                "UPDATE {full} SET ok = true WHERE id = 1",
                "UPDATE {plain} SET ok = true WHERE id = 1",
            )
            batch = await next_batch(stream)

    full, plain = batch.events
    assert full.payload["row"]["note"] == "x" * 5000
    assert full.info["unchanged_toast_columns"] == []
    assert plain.payload["row"]["note"] is None
    assert plain.info["unchanged_toast_columns"] == ["note"]


async def test_a_missing_slot_or_publication_is_named(tmp_path: Path) -> None:
    async with cdc_source() as source, resource_store(tmp_path) as store:
        no_slot = listener_on(store, source.lease(replication_slot_name="gw_no_such_slot"))
        no_publication = listener_on(store, source.lease(publication_name="gw_no_such_pub"))

        with pytest.raises(NotFound, match="replication slot 'gw_no_such_slot' does not exist"):
            await no_slot.connect()
        with pytest.raises(NotFound, match="publication 'gw_no_such_pub' does not exist"):
            await no_publication.connect()
        await no_slot.close()
        await no_publication.close()


async def test_a_slot_streamed_elsewhere_is_reported(tmp_path: Path) -> None:
    async with cdc_source() as source, resource_store(tmp_path) as store:
        first = listener_on(store, source.lease())
        second = listener_on(store, source.lease())
        async with streaming(first):
            with pytest.raises(ConnectionError, match="streamed by another connection"):
                await second.connect()
            await second.close()

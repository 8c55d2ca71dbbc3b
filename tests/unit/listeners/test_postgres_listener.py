"""The PostgreSQL listener against an in-memory replication server: batches per transaction,
confirmation only on ack, replay after a nack, and idle confirmation of keepalives."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest

from gateway.errors import InvalidInput
from gateway.listeners.base import Batch
from gateway.listeners.lease import Lease, TriggerRef
from gateway.listeners.pgoutput import UNCHANGED_TOAST, TupleValue
from gateway.listeners.postgres import PostgresListener, Stream
from gateway.listeners.postgres_config import PostgresResource, PostgresTriggerConfig
from gateway.listeners.replication import Keepalive, StreamMessage, XLogData

SLOT = "orders_slot"
ORDERS = 16400
INT4, TEXT, NUMERIC = 23, 25, 1700
WAIT_S = 2.0


# pgoutput messages, written as PostgreSQL writes them ------------------------------------------


def begin(final_lsn: int) -> bytes:
    return b"B" + struct.pack("!Qqi", final_lsn, 0, 700)


def commit(commit_lsn: int, end_lsn: int) -> bytes:
    return b"C" + struct.pack("!bQQq", 0, commit_lsn, end_lsn, 0)


def relation(oid: int, name: str, *columns: tuple[str, int]) -> bytes:
    described = b"".join(
        struct.pack("!b", index == 0) + column.encode() + b"\0" + struct.pack("!Ii", type_oid, -1)
        for index, (column, type_oid) in enumerate(columns)
    )
    header = struct.pack("!I", oid) + b"public\0" + name.encode() + b"\0d"
    return b"R" + header + struct.pack("!h", len(columns)) + described


def tuple_data(values: Sequence[TupleValue]) -> bytes:
    encoded = struct.pack("!h", len(values))
    for value in values:
        if value is None:
            encoded += b"n"
        elif value is UNCHANGED_TOAST:
            encoded += b"u"
        elif isinstance(value, str):
            encoded += b"t" + struct.pack("!i", len(value.encode())) + value.encode()
    return encoded


def insert(*values: TupleValue) -> bytes:
    return b"I" + struct.pack("!I", ORDERS) + b"N" + tuple_data(values)


def update(new: Sequence[TupleValue], old: Sequence[TupleValue] | None = None) -> bytes:
    old_part = b"" if old is None else b"O" + tuple_data(old)
    return b"U" + struct.pack("!I", ORDERS) + old_part + b"N" + tuple_data(new)


def delete(*key: TupleValue) -> bytes:
    return b"D" + struct.pack("!I", ORDERS) + b"K" + tuple_data(key)


def truncate() -> bytes:
    return b"T" + struct.pack("!ibI", 1, 0, ORDERS)


ORDERS_RELATION = relation(ORDERS, "orders", ("id", INT4), ("total", NUMERIC), ("note", TEXT))


# An in-memory server: a WAL of transactions and one slot -----------------------------------------

NOW = datetime(2024, 1, 1, tzinfo=UTC)


class FakeStream:
    """One connection's stream: what the server had to send after its start position."""

    def __init__(self, server: FakeServer, start: int) -> None:
        self._server = server
        self.confirmed = start
        self.queue: asyncio.Queue[StreamMessage] = asyncio.Queue()
        self.described = False  # the relation was sent on this connection
        self.closed = False

    def confirm(self, lsn: int) -> None:
        self.confirmed = max(self.confirmed, lsn)

    async def send_status(self, *, reply_requested: bool = False) -> None:
        self._server.status_updates.append(self.confirmed)
        self._server.slot_confirmed = max(self._server.slot_confirmed, self.confirmed)

    async def read(self) -> StreamMessage:
        return await self.queue.get()

    async def close(self) -> None:
        self.closed = True

    def send(self, messages: list[bytes]) -> None:
        for message in messages:
            # Like pgoutput, a connection describes a relation before its first change.
            if message[:1] in (b"I", b"U", b"D", b"T") and not self.described:
                self.queue.put_nowait(XLogData(0, 0, NOW, ORDERS_RELATION))
                self.described = True
            self.queue.put_nowait(XLogData(0, 0, NOW, message))


class FakeServer:
    """Transactions committed so far; a new stream gets those after the slot's position."""

    def __init__(self) -> None:
        self.transactions: list[tuple[int, list[bytes]]] = []  # (commit end LSN, messages)
        self.slot_confirmed = 0
        self.status_updates: list[int] = []
        self.opened_at: list[int] = []
        self.streams: list[FakeStream] = []

    def commit(self, commit_lsn: int, end_lsn: int, *changes: bytes) -> None:
        """Commit a transaction of `changes` (its Begin and Commit are added)."""
        messages = [begin(commit_lsn), *changes, commit(commit_lsn, end_lsn)]
        self.transactions.append((end_lsn, messages))
        if self.streams and not self.streams[-1].closed:
            self.streams[-1].send(messages)

    def send_raw(self, *messages: bytes) -> None:
        """Put messages on the current stream as they are."""
        self.streams[-1].send(list(messages))

    def keepalive(self, wal_end: int, *, reply: bool = False) -> None:
        self.streams[-1].queue.put_nowait(Keepalive(wal_end, NOW, reply))

    async def open(
        self, resource: PostgresResource, config: PostgresTriggerConfig, start_lsn: int
    ) -> Stream:
        assert config.replication_slot_name == SLOT
        self.opened_at.append(start_lsn)
        stream = FakeStream(self, max(start_lsn, self.slot_confirmed))
        for end_lsn, messages in self.transactions:
            if end_lsn > stream.confirmed:
                stream.send(messages)
        self.streams.append(stream)
        return stream


RESOURCE = {"host": "db.internal", "user": "cdc", "dbname": "shop"}


def lease(**row: Any) -> Lease:
    """A lease on a postgres trigger of workspace `ws`."""
    columns = {
        "postgres_resource_path": "u/alice/db",
        "replication_slot_name": SLOT,
        "publication_name": "orders_pub",
        **row,
    }
    return Lease(TriggerRef("postgres", "ws", "u/alice/orders"), "gw-1", MappingProxyType(columns))


class Harness:
    """A connected listener over a fake server, with its consume stream."""

    def __init__(self, server: FakeServer, listener: PostgresListener) -> None:
        self.server = server
        self.listener = listener
        self.stream: AsyncIterator[Batch] = listener.consume()
        self.resources_read: list[tuple[str, str]] = []

    async def next_batch(self) -> Batch:
        async with asyncio.timeout(WAIT_S):
            return await anext(self.stream)

    async def no_batch(self) -> None:
        """Nothing is delivered, after the listener has read everything it was sent."""
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await anext(self.stream)
        # A cancelled anext closes the generator: start a new one, as a new delivery would.
        self.stream = self.listener.consume()


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    server = FakeServer()
    reads: list[tuple[str, str]] = []

    async def resources(workspace_id: str, path: str) -> Any:
        reads.append((workspace_id, path))
        return RESOURCE

    listener = PostgresListener(lease(), resources, server.open)
    await listener.connect()
    connected = Harness(server, listener)
    connected.resources_read = reads
    yield connected
    await listener.close()


def payloads(batch: Batch) -> list[dict[str, Any]]:
    return [dict(event.payload) for event in batch.events]


async def test_connect_reads_the_resource_and_streams_from_the_slot(harness: Harness) -> None:
    assert harness.resources_read == [("ws", "u/alice/db")]
    assert harness.server.opened_at == [0]


async def test_a_transaction_becomes_one_batch_with_an_event_per_row_change(
    harness: Harness,
) -> None:
    harness.server.commit(
        0x1000, 0x1050, insert("1", "12.50", "a"), insert("2", None, None), delete("1", None, None)
    )

    batch = await harness.next_batch()

    assert [event.dedup_key for event in batch.events] == [
        f"{SLOT}/0/1000/0",
        f"{SLOT}/0/1000/1",
        f"{SLOT}/0/1000/2",
    ]
    assert payloads(batch) == [
        {
            "transaction_type": "insert",
            "schema_name": "public",
            "table_name": "orders",
            "old_row": None,
            "row": {"id": 1, "total": "12.50", "note": "a"},
        },
        {
            "transaction_type": "insert",
            "schema_name": "public",
            "table_name": "orders",
            "old_row": None,
            "row": {"id": 2, "total": None, "note": None},
        },
        {
            "transaction_type": "delete",
            "schema_name": "public",
            "table_name": "orders",
            "old_row": None,
            "row": {"id": 1, "total": None, "note": None},
        },
    ]
    assert all(event.kind == "postgres" for event in batch.events)
    assert batch.events[0].raw == insert("1", "12.50", "a")


async def test_the_commit_end_lsn_is_confirmed_only_when_the_batch_is_acked(
    harness: Harness,
) -> None:
    harness.server.commit(0x1000, 0x1050, insert("1", "1", "a"))
    batch = await harness.next_batch()
    assert harness.server.status_updates == []

    await harness.listener.ack(batch)
    await harness.listener.ack(batch)  # acking is idempotent

    assert harness.server.status_updates == [0x1050]
    assert harness.server.slot_confirmed == 0x1050


async def test_a_nacked_transaction_is_streamed_again_from_the_last_confirmed_lsn(
    harness: Harness,
) -> None:
    harness.server.commit(0x1000, 0x1050, insert("1", "1", "a"))
    harness.server.commit(0x2000, 0x2050, insert("2", "2", "b"))
    first = await harness.next_batch()
    await harness.listener.ack(first)
    second = await harness.next_batch()

    await harness.listener.nack(second)
    await harness.listener.ack(second)  # given up: acking it now confirms nothing
    assert harness.server.status_updates == [0x1050]
    again = await harness.next_batch()

    assert harness.server.opened_at == [0, 0x1050]
    assert harness.server.streams[0].closed
    assert [event.dedup_key for event in again.events] == [f"{SLOT}/0/2000/0"]
    assert payloads(again) == payloads(second)
    assert harness.server.slot_confirmed == 0x1050
    await harness.listener.ack(again)
    assert harness.server.slot_confirmed == 0x2050


async def test_a_batch_never_acked_is_streamed_again_to_the_next_listener(
    harness: Harness,
) -> None:
    harness.server.commit(0x1000, 0x1050, insert("1", "1", "a"))
    unacked = await harness.next_batch()
    await harness.listener.close()

    successor = PostgresListener(lease(), _resource_loader, harness.server.open)
    await successor.connect()
    try:
        replayed = await anext(successor.consume())
    finally:
        await successor.close()

    assert [e.dedup_key for e in replayed.events] == [e.dedup_key for e in unacked.events]


async def test_an_idle_listener_confirms_the_wal_end_of_keepalives(harness: Harness) -> None:
    harness.server.commit(0x1000, 0x1050, insert("1", "1", "a"))
    await harness.listener.ack(await harness.next_batch())

    harness.server.keepalive(0x9000)
    harness.server.keepalive(0x9100, reply=True)
    await harness.no_batch()

    assert harness.server.status_updates == [0x1050, 0x9100]


async def test_keepalives_confirm_nothing_in_the_middle_of_a_transaction(
    harness: Harness,
) -> None:
    harness.server.send_raw(begin(0x1000), insert("1", "1", "a"))
    harness.server.keepalive(0x9000, reply=True)
    harness.server.send_raw(commit(0x1000, 0x1050))

    batch = await harness.next_batch()

    assert harness.server.status_updates == [0]
    await harness.listener.ack(batch)
    assert harness.server.slot_confirmed == 0x1050


async def test_a_transaction_without_row_changes_is_confirmed_without_a_batch(
    harness: Harness,
) -> None:
    harness.server.commit(0x1000, 0x1050, truncate())
    harness.server.commit(0x2000, 0x2050)
    harness.server.keepalive(0x2050, reply=True)

    await harness.no_batch()

    assert harness.server.status_updates == [0x2050]


async def test_an_update_fills_unchanged_toast_values_from_the_old_row(harness: Harness) -> None:
    harness.server.commit(
        0x1000,
        0x1050,
        update(["1", "2", UNCHANGED_TOAST], old=["1", "1", "long text"]),
        update(["2", "3", UNCHANGED_TOAST]),
    )

    batch = await harness.next_batch()

    full, key_only = payloads(batch)
    assert full["row"] == {"id": 1, "total": "2", "note": "long text"}
    assert full["old_row"] == {"id": 1, "total": "1", "note": "long text"}
    assert batch.events[0].info == {"unchanged_toast_columns": []}
    assert key_only["row"] == {"id": 2, "total": "3", "note": None}
    assert key_only["old_row"] is None
    assert batch.events[1].info == {"unchanged_toast_columns": ["note"]}


async def test_a_change_of_an_undescribed_relation_fails_the_stream(harness: Harness) -> None:
    harness.server.streams[0].queue.put_nowait(XLogData(0, 0, NOW, begin(0x1000)))
    harness.server.streams[0].queue.put_nowait(XLogData(0, 0, NOW, insert("1", "1", "a")))

    with pytest.raises(ValueError, match="never described"):
        await harness.next_batch()


async def test_a_trigger_row_that_is_not_valid_fails_connect() -> None:
    server = FakeServer()
    listener = PostgresListener(lease(replication_slot_name="Bad"), _resource_loader, server.open)

    with pytest.raises(InvalidInput, match="replication_slot_name"):
        await listener.connect()
    assert server.opened_at == []
    await listener.close()


async def _resource_loader(workspace_id: str, path: str) -> Any:
    return RESOURCE

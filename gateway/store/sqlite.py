"""The embedded SQLite store: one connection in the gateway's process (aiosqlite's thread), WAL
mode, transactions one at a time; `write` runs in the writer process (`sqlite_writer.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite

from gateway.errors import ConfigError, DatabaseUnavailable, StoreError
from gateway.store.file_mode import make_database_private
from gateway.store.notify import Broadcaster
from gateway.store.queries import load_queries, named_sql
from gateway.store.sqlite_connection import (
    PRAGMAS,
    format_timestamp,
    named_statements,
    split_statements,
    sql_functions,
    to_json,
)
from gateway.store.sqlite_writer import WriterProcess
from gateway.store.values import Row

if TYPE_CHECKING:
    from gateway.secrets.keeper import SecretKeeper


def sqlite_path(url: str) -> str:
    """The file of `sqlite:///relative.db`, `sqlite:////absolute.db` or `sqlite:///:memory:`."""
    rest = url.removeprefix("sqlite://")
    if not rest.startswith("/"):
        raise ConfigError(f"bad SQLite URL {url!r}: write sqlite:///gateway.db")
    return rest[1:] or ":memory:"


class SqliteTransaction:
    """Named queries on the single SQLite connection, inside BEGIN IMMEDIATE ... COMMIT."""

    def __init__(self, conn: aiosqlite.Connection, queries: dict[str, str]) -> None:
        self._conn = conn
        self._queries = queries
        self.pending_notifications: list[tuple[str, str]] = []

    def _sql(self, query: str) -> str:
        return named_sql(self._queries, query)

    async def execute(self, query: str, **params: Any) -> int:
        cursor = await self._conn.execute(self._sql(query), params)
        count = cursor.rowcount
        await cursor.close()
        return count

    async def fetch_one(self, query: str, **params: Any) -> Row | None:
        cursor = await self._conn.execute(self._sql(query), params)
        row = await cursor.fetchone()
        # RETURNING statements finish their work only once the cursor is drained.
        await cursor.fetchall()
        await cursor.close()
        return None if row is None else dict(row)

    async def fetch_all(self, query: str, **params: Any) -> list[Row]:
        cursor = await self._conn.execute(self._sql(query), params)
        rows = await cursor.fetchall()
        await cursor.close()
        return [dict(row) for row in rows]

    def notify(self, channel: str, payload: str = "") -> None:
        self.pending_notifications.append((channel, payload))

    async def run_script(self, sql: str) -> None:
        # executescript() would commit the open transaction: run statement by statement.
        for statement in split_statements(sql):
            await self._conn.execute(statement)

    async def copy_rows(self, query: str, rows: Iterable[Sequence[Any]]) -> None:
        # The rows are built here, not in aiosqlite's thread, which would hold the GIL for them.
        await self._conn.executemany(self._sql(query), list(rows))

    def copy_field(self, value: Any) -> Any:
        # What the registered adapters would make of it, made once.
        if isinstance(value, str):
            return value
        if isinstance(value, datetime):
            return format_timestamp(value)
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, list | tuple):
            return to_json(list(value))
        return value

    async def copy_fields(
        self, query: str, rows: Iterable[Sequence[Any]], *, new_only: bool = False
    ) -> bool:
        rows = list(rows)
        if not new_only:
            await self._conn.executemany(self._sql(query), rows)
            return True
        await self._conn.execute("SAVEPOINT copy_fields")
        try:
            await self._conn.executemany(self._sql(query), rows)
        except sqlite3.IntegrityError as exc:
            if exc.sqlite_errorcode not in _UNIQUE_VIOLATIONS:
                raise
            await self._conn.execute("ROLLBACK TO copy_fields")
            await self._conn.execute("RELEASE copy_fields")
            return False
        await self._conn.execute("RELEASE copy_fields")
        return True


_UNIQUE_VIOLATIONS = frozenset(
    {sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE}
)


class SqliteStore:
    """The SQLite store; every transaction is serialised on one connection."""

    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, writer: WriterProcess | None = None) -> None:
        self._conn = conn
        self._writer = writer
        self._lock = asyncio.Lock()
        self._queries = dict(load_queries(self.dialect))
        self.notifications = Broadcaster()
        self.secrets: SecretKeeper | None = None
        self._closed = False
        # The writer process runs writes one after the other: with a second one waiting in its
        # pipe, it starts that one as soon as it committed the first.
        self.writes_in_flight = 1 if writer is None else 2
        # What `pg_notify()` in the open transaction's statements asked to publish.
        self._noted: list[tuple[str, str]] = []

    @classmethod
    async def open(cls, url: str) -> SqliteStore:
        """Open (creating if needed) the database file named by `sqlite:///path`."""
        target = sqlite_path(url)
        if target != ":memory:":
            parent = Path(target).parent
            if not parent.exists():
                raise DatabaseUnavailable(f"cannot open {url}: folder {parent} does not exist")
            try:
                make_database_private(Path(target))
            except OSError as exc:
                raise DatabaseUnavailable(f"cannot open {url}: {exc.strerror}") from None
        try:
            conn = await aiosqlite.connect(
                target, detect_types=sqlite3.PARSE_DECLTYPES, isolation_level=None
            )
            conn.row_factory = sqlite3.Row
            for pragma in PRAGMAS:
                await conn.execute(pragma)
            for name, (arity, function) in sql_functions().items():
                await conn.create_function(name, arity, function)
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(f"cannot open {url}: {exc}") from None
        store = cls(conn, None if target == ":memory:" else WriterProcess(target))
        await conn.create_function("pg_notify", 2, store._note)
        return store

    @property
    def writer_pid(self) -> int | None:
        """The process id of the writer process while it runs (`sqlite_writer.py`)."""
        return None if self._writer is None else self._writer.pid

    def _note(self, channel: str, payload: str) -> None:
        # Called in aiosqlite's thread while the event loop awaits the statement.
        self._noted.append((channel, payload))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTransaction]:
        async with self._lock:
            tx = SqliteTransaction(self._conn, self._queries)
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                yield tx
                await self._conn.execute("COMMIT")
            except BaseException as exc:
                # Also after a cancellation: the statement may still run in aiosqlite's thread,
                # and the connection must never stay inside a transaction.
                await asyncio.shield(self._rollback())
                self._noted.clear()
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"SQLite transaction failed: {exc}") from exc
                raise
            committed = [*tx.pending_notifications, *self._noted]
            self._noted.clear()
        for channel, payload in committed:
            self.notifications.publish(channel, payload)

    async def write(self, query: str, **params: Any) -> list[Row]:
        # A database file is written by the writer process (`sqlite_writer.py`), its rows as
        # SQLite holds them; an in-memory one, which no other process can open, here.
        if self._writer is not None:
            rows, notes = await self._writer.write(query, params)
            for channel, payload in notes:
                self.notifications.publish(channel, payload)
            return rows
        *leading, last = named_statements(query)
        async with self.transaction():
            for statement in leading:
                await (await self._conn.execute(statement, params)).close()
            cursor = await self._conn.execute(last, params)
            rows = [dict(row) for row in await cursor.fetchall()]
            await cursor.close()
        return rows

    async def _rollback(self) -> None:
        # No transaction may be open any more (it never began, or it committed).
        with contextlib.suppress(sqlite3.OperationalError):
            await self._conn.execute("ROLLBACK")

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._writer is not None:
                await self._writer.close()
            await self._conn.close()

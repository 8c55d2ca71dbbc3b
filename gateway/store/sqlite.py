"""The embedded SQLite store: one process, one writer, WAL mode."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite

from gateway.errors import ConfigError, DatabaseUnavailable, StoreError
from gateway.store.file_mode import make_database_private
from gateway.store.notify import Broadcaster
from gateway.store.queries import load_queries, named_sql
from gateway.store.values import Json, Row, json_bytes, utc_now

if TYPE_CHECKING:
    from gateway.secrets.keeper import SecretKeeper
from gateway.token_text import token_hash


def format_timestamp(moment: datetime) -> str:
    """One fixed-width text form, so that timestamps compare correctly as strings."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _now_plus(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return format_timestamp(utc_now() + timedelta(seconds=seconds))


def _to_json(value: Any) -> str:
    # UUIDs and timestamps inside lists (ids = ANY(...)) travel as their text.
    return json_bytes(value, default=_json_text).decode()


def _json_text(value: Any) -> str:
    return format_timestamp(value) if isinstance(value, datetime) else str(value)


def _register_types() -> None:
    # Declared column types in the SQLite schema select these converters.
    sqlite3.register_adapter(dict, _to_json)
    sqlite3.register_adapter(list, _to_json)
    sqlite3.register_adapter(Json, lambda value: _to_json(value.value))
    sqlite3.register_adapter(uuid.UUID, str)
    sqlite3.register_adapter(datetime, format_timestamp)
    sqlite3.register_converter("TIMESTAMPTZ", lambda raw: datetime.fromisoformat(raw.decode()))
    sqlite3.register_converter("JSONB", json.loads)
    sqlite3.register_converter("JSONB_ARRAY", json.loads)
    sqlite3.register_converter("TEXT_ARRAY", json.loads)
    sqlite3.register_converter(
        "UUID_ARRAY", lambda raw: [uuid.UUID(item) for item in json.loads(raw)]
    )
    sqlite3.register_converter("UUID", lambda raw: uuid.UUID(raw.decode()))
    sqlite3.register_converter("BOOLEAN", lambda raw: raw not in (b"0", b""))


_register_types()


def sqlite_path(url: str) -> str:
    """The file of `sqlite:///relative.db`, `sqlite:////absolute.db` or `sqlite:///:memory:`."""
    rest = url.removeprefix("sqlite://")
    if not rest.startswith("/"):
        raise ConfigError(f"bad SQLite URL {url!r}: write sqlite:///gateway.db")
    return rest[1:] or ":memory:"


def split_statements(sql: str) -> list[str]:
    """The statements of a script, in order (a statement ends with a line ending in `;`, or
    with the script)."""
    statements: list[str] = []
    statement = ""
    for line in sql.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            statements.append(statement)
            statement = ""
    if any(part.strip() and not part.strip().startswith("--") for part in statement.splitlines()):
        if not sqlite3.complete_statement(statement + ";"):
            raise StoreError(f"incomplete SQL statement at the end of the script: {statement!r}")
        statements.append(statement)
    return statements


def _write_in_thread(
    conn: sqlite3.Connection, statements: list[str], params: dict[str, Any]
) -> list[sqlite3.Row]:
    """Run `statements` as one transaction, on the connection's own thread; the last one's
    rows."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        *leading, last = statements
        for statement in leading:
            conn.execute(statement, params)
        rows = conn.execute(last, params).fetchall()
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return rows


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
            return _to_json(list(value))
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

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self._queries = dict(load_queries(self.dialect))
        self._statements: dict[str, list[str]] = {}
        self.notifications = Broadcaster()
        self.secrets: SecretKeeper | None = None
        self._closed = False
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
            for pragma in (
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=NORMAL",
                "PRAGMA foreign_keys=ON",
                "PRAGMA busy_timeout=5000",
            ):
                await conn.execute(pragma)
            functions: dict[str, tuple[int, Callable[..., Any]]] = {
                "now": (0, lambda: format_timestamp(utc_now())),
                "gw_now_plus": (1, _now_plus),
                "gw_sha256": (1, token_hash),
            }
            for name, (arity, function) in functions.items():
                await conn.create_function(name, arity, function)
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(f"cannot open {url}: {exc}") from None
        store = cls(conn)
        await conn.create_function("pg_notify", 2, store._note)
        return store

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
        statements = self._statements.get(query)
        if statements is None:
            statements = self._statements[query] = split_statements(named_sql(self._queries, query))
        async with self._lock:
            # One hand-over to aiosqlite's thread for the whole transaction, not one per
            # statement: each costs a wake-up of the thread and of the event loop.
            # (A cancelled caller leaves it to finish there, committed or rolled back whole.)
            raw: sqlite3.Connection = self._conn._conn
            run_in_thread: Callable[..., Awaitable[list[sqlite3.Row]]] = self._conn._execute
            try:
                rows = await run_in_thread(_write_in_thread, raw, statements, params)
            except BaseException as exc:
                self._noted.clear()
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"SQLite transaction failed: {exc}") from exc
                raise
            committed = list(self._noted)
            self._noted.clear()
        for channel, payload in committed:
            self.notifications.publish(channel, payload)
        return [dict(row) for row in rows]

    async def _rollback(self) -> None:
        # No transaction may be open any more (it never began, or it committed).
        with contextlib.suppress(sqlite3.OperationalError):
            await self._conn.execute("ROLLBACK")

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._conn.close()

"""The PostgreSQL store: a psycopg 3 async pool for transactions, direct connections
(`pg_direct.py`) for `write` and for the LISTEN connection that hears wake-ups."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import JsonbDumper
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from gateway.errors import DatabaseUnavailable, StoreError
from gateway.store.notify import CHANNELS, Broadcaster
from gateway.store.pg_direct import ConnectionLost, DirectConnection, DirectWriter, StatementFailed
from gateway.store.queries import PLACEHOLDER, load_queries, named_sql
from gateway.store.values import Json, Row, json_bytes

if TYPE_CHECKING:
    from gateway.secrets.keeper import SecretKeeper

logger = logging.getLogger(__name__)


def to_pyformat(sql: str) -> str:
    """`:name` placeholders to psycopg's `%(name)s`, leaving `::casts` alone."""
    return PLACEHOLDER.sub(r"%(\1)s", sql.replace("%", "%%"))


class _DictDumper(JsonbDumper):
    """Store dicts as jsonb."""

    _dumps = json_bytes


class _JsonDumper(_DictDumper):
    """Store the project's `Json` wrapper as jsonb."""

    def dump(self, obj: Any) -> Any:
        return super().dump(obj.value)


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    conn.adapters.register_dumper(dict, _DictDumper)
    conn.adapters.register_dumper(Json, _JsonDumper)


class PostgresTransaction:
    """Named queries on one pooled connection inside one transaction."""

    def __init__(self, conn: psycopg.AsyncConnection[Row], queries: dict[str, str]) -> None:
        self._conn = conn
        self._queries = queries
        self.pending: list[tuple[str, str]] = []

    def _sql(self, query: str) -> str:
        return named_sql(self._queries, query)

    async def execute(self, query: str, **params: Any) -> int:
        cursor = await self._conn.execute(self._sql(query), params)
        return cursor.rowcount

    async def fetch_one(self, query: str, **params: Any) -> Row | None:
        cursor = await self._conn.execute(self._sql(query), params)
        return await cursor.fetchone()

    async def fetch_all(self, query: str, **params: Any) -> list[Row]:
        cursor = await self._conn.execute(self._sql(query), params)
        return await cursor.fetchall()

    def notify(self, channel: str, payload: str = "") -> None:
        # Collected and sent by the store inside the same transaction, delivered on commit.
        self.pending.append((channel, payload))

    async def run_script(self, sql: str) -> None:
        await self._conn.execute(sql.encode())

    async def copy_rows(self, query: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self._conn.cursor() as cursor, cursor.copy(self._sql(query)) as copy:
            for row in rows:
                await copy.write_row(row)

    def copy_field(self, value: Any) -> str:
        if isinstance(value, str):
            return _copy_escape(value)
        if value is None:
            return "\\N"
        if isinstance(value, bool):
            return "t" if value else "f"
        if isinstance(value, list | tuple):
            return _copy_escape("{" + ",".join(map(_array_element, value)) + "}")
        # Numbers, UUIDs and timestamps in the form PostgreSQL parses.
        return _copy_escape(str(value))

    async def copy_fields(
        self, query: str, rows: Iterable[Sequence[Any]], *, new_only: bool = False
    ) -> bool:
        data = "".join(["\t".join(row) + "\n" for row in rows])
        if not new_only:
            await self._copy_text(query, data)
            return True
        try:
            async with self._conn.transaction():  # a savepoint: the conflict leaves tx usable
                await self._copy_text(query, data)
        except psycopg.errors.UniqueViolation:
            return False
        return True

    async def _copy_text(self, query: str, data: str) -> None:
        async with self._conn.cursor() as cursor, cursor.copy(self._sql(query)) as copy:
            await copy.write(data)


def _copy_escape(text: str) -> str:
    """Text as a field of COPY's text format."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _array_element(text: str | None) -> str:
    """One element of an array literal (before `_copy_escape`)."""
    if text is None:
        return "NULL"
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class PostgresStore:
    """The PostgreSQL store, shared by many gateway instances."""

    dialect = "postgresql"
    writes_in_flight = 2
    """A second batch is sent while one commits: the commit's disk flush, not the instance, is
    what a batch waits for."""

    def __init__(self, url: str, pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]]) -> None:
        self._url = url
        self._pool = pool
        queries = load_queries(self.dialect)
        self._queries = {name: to_pyformat(sql) for name, sql in queries.items()}
        self._writer = DirectWriter(url, queries, self.writes_in_flight)
        self.notifications = Broadcaster()
        self.secrets: SecretKeeper | None = None
        self._listener: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def open(cls, url: str, pool_size: int = 10) -> PostgresStore:
        """Connect the pool (failing fast when the server is unreachable) and start listening."""
        try:
            probe = await psycopg.AsyncConnection.connect(url, connect_timeout=5)
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0]
            raise DatabaseUnavailable(f"cannot connect to {redact(url)}: {reason}") from None
        await probe.close()
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            # Transactions begin explicitly (`transaction`); a lone statement commits itself.
            kwargs={"row_factory": dict_row, "autocommit": True},
            configure=_configure,
            open=False,
            name="gateway",
        )
        try:
            await pool.open(wait=True, timeout=10)
        except (psycopg.Error, PoolTimeout) as exc:
            await pool.close()
            raise DatabaseUnavailable(f"cannot connect to {redact(url)}: {exc}") from None
        store = cls(url, pool)
        store._listener = asyncio.create_task(store._listen(), name="store:listen")
        return store

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTransaction]:
        async with self._pool.connection() as conn, conn.transaction():
            tx = PostgresTransaction(conn, self._queries)
            yield tx
            if tx.pending:
                channels, payloads = zip(*tx.pending, strict=True)
                await conn.execute(
                    "SELECT pg_notify(c, p) FROM unnest(%s::text[], %s::text[]) AS n(c, p)",
                    (list(channels), list(payloads)),
                )
        # Committed: this process hears of it at once, not only when the NOTIFY comes back
        # through the LISTEN connection (a request right after a route edit must see it).
        for channel, payload in tx.pending:
            self.notifications.publish(channel, payload)

    async def write(self, query: str, **params: Any) -> list[Row]:
        try:
            return await self._writer.write(query, params)
        except (StatementFailed, ConnectionLost, psycopg.Error) as exc:
            raise StoreError(f"PostgreSQL write failed: {exc}") from exc

    async def _listen(self) -> None:
        """Forward NOTIFYs to the broadcaster, reconnecting with a capped backoff."""
        delay = 0.5
        while True:
            try:
                conn = await DirectConnection.connect(self._url, self.notifications.publish)
                try:
                    await conn.listen(CHANNELS)
                    delay = 0.5
                    # A reconnect may have missed wake-ups: tell waiters to look again.
                    self.notifications.publish(CHANNELS[0], "")
                    raise await conn.wait_lost()
                finally:
                    await conn.close()
            except (psycopg.Error, ConnectionLost, StatementFailed) as exc:
                logger.warning(
                    "notification connection lost: %s; reconnecting in %.1fs",
                    exc,
                    delay,
                    extra={"action": "listen_reconnect"},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._writer.close()
        await self._pool.close()


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)

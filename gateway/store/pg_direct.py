"""PostgreSQL connections driven through libpq directly, for the two hottest paths.

Through psycopg's cursors, `Store.write` (a route batch: one statement, one round trip) cost the
event loop about 240 us, and each NOTIFY the LISTEN connection heard about 40 us, mostly in the
per-call machinery (a cursor, query conversion, a reader registered and removed at every wait).
Here the connection's socket is
registered with the loop once: its callback reads what arrived, hands notifications on, and
wakes the one statement waiting for its result. Statements are prepared once per connection and
their parameters sent as text; psycopg still opens and closes the connection, and turns result
values into Python values.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg import pq
from psycopg.adapt import Transformer

from gateway.store.queries import PLACEHOLDER, named_sql
from gateway.store.values import Json, Row, json_bytes

NotificationHandler = Callable[[str, str], None]


class ConnectionLost(Exception):
    """The connection closed or failed; it cannot be used again."""


class StatementFailed(Exception):
    """The server refused a statement; the connection is still usable."""


def numbered(sql: str) -> tuple[bytes, tuple[str, ...]]:
    """`:name` placeholders to libpq's `$1`, `$2`...; the SQL and the names in number order (a
    name used twice gets one number). `::casts` are left alone."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return PLACEHOLDER.sub(number, sql).encode(), tuple(names)


def text_parameter(value: Any) -> bytes | None:
    """A parameter in PostgreSQL's text form (its type is inferred from the statement)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, int | float | UUID):
        return str(value).encode()
    if isinstance(value, Json):
        return json_bytes(value.value)
    if isinstance(value, dict):
        return json_bytes(value)
    raise TypeError(f"cannot send a {type(value).__name__} as a statement parameter")


class DirectConnection:
    """One connection whose statements and notifications go through libpq directly."""

    def __init__(
        self, conn: psycopg.AsyncConnection[Any], on_notification: NotificationHandler | None
    ) -> None:
        self._conn = conn
        self._pgconn = conn.pgconn
        self._pgconn.nonblocking = 1
        self._encoding = conn.info.encoding
        self._on_notification = on_notification
        self._loop = asyncio.get_running_loop()
        self._socket = self._pgconn.socket
        self._waiter: asyncio.Future[None] | None = None
        self._lost: ConnectionLost | None = None
        self._prepared: set[bytes] = set()
        self._loop.add_reader(self._socket, self.read_input)

    @classmethod
    async def connect(
        cls, url: str, on_notification: NotificationHandler | None = None
    ) -> DirectConnection:
        """Open a connection; `on_notification(channel, payload)` hears its NOTIFYs."""
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        return cls(conn, on_notification)

    @property
    def lost(self) -> bool:
        """Whether the connection failed or was closed: it cannot run anything more."""
        return self._lost is not None

    async def execute(
        self, name: str, sql: bytes, params: Sequence[bytes | None]
    ) -> list[pq.abc.PGresult]:
        """Run the statement `sql`, prepared under `name` on first use, as a transaction of its
        own; its results. One statement runs at a time: the caller waits for one before the
        next. A statement interrupted (cancelled) loses the connection, whose answers would no
        longer match its statements."""
        key = name.encode()
        try:
            if key not in self._prepared:
                self._pgconn.send_prepare(key, sql)
                await self._results()
                self._prepared.add(key)
            self._pgconn.send_query_prepared(key, params)
            return await self._results()
        except psycopg.OperationalError as exc:
            raise self._lose(_first_line(str(exc))) from None
        except (asyncio.CancelledError, ConnectionLost):
            self._lose("a statement was interrupted")
            raise

    def rows(self, result: pq.abc.PGresult) -> list[Row]:
        """The rows of `result`, as dicts of Python values."""
        loader = Transformer(self._conn)
        loader.set_pgresult(result)
        names = [(result.fname(column) or b"").decode() for column in range(result.nfields)]
        tuples = loader.load_rows(0, result.ntuples, tuple)
        return [dict(zip(names, values, strict=True)) for values in tuples]

    async def listen(self, channels: Sequence[str]) -> None:
        """LISTEN on `channels`."""
        try:
            self._pgconn.send_query("; ".join(f"LISTEN {name}" for name in channels).encode())
            await self._results()
        except psycopg.OperationalError as exc:
            raise self._lose(_first_line(str(exc))) from None

    async def wait_lost(self) -> ConnectionLost:
        """Wait until the connection fails; why."""
        while self._lost is None:
            await self._wait()
        return self._lost

    async def close(self) -> None:
        """Close the connection."""
        self._lose("connection closed")
        await self._conn.close()

    def read_input(self) -> None:
        """Read what arrived: hand on the notifications, wake the statement waiting, and notice
        an end of the connection. The loop calls it when the socket is readable; a caller about
        to use a connection that sat idle calls it first, as the loop may not have yet."""
        if self._lost is not None:
            return
        try:
            self._pgconn.consume_input()
        except psycopg.OperationalError as exc:
            self._lose(_first_line(str(exc)))
            return
        if self._on_notification is not None:
            while (note := self._pgconn.notifies()) is not None:
                channel, payload = note.relname.decode(self._encoding), note.extra
                self._on_notification(channel, payload.decode(self._encoding))
        self._wake()

    def _lose(self, reason: str) -> ConnectionLost:
        if self._lost is None:
            self._lost = ConnectionLost(reason)
            self._loop.remove_reader(self._socket)
        self._wake()
        return self._lost

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def _writable(self) -> None:
        self._loop.add_writer(self._socket, self._wake)
        try:
            await self._wait()
        finally:
            self._loop.remove_writer(self._socket)

    async def _results(self) -> list[pq.abc.PGresult]:
        """Send what is buffered, then collect every result of the statement sent; raise
        StatementFailed when the server refused it."""
        pgconn = self._pgconn
        while pgconn.flush():  # the socket's buffer is full: rare for one statement
            await self._writable()
        results: list[pq.abc.PGresult] = []
        while True:
            if self._lost is not None:
                raise self._lost
            if pgconn.is_busy():
                await self._wait()
                continue
            result = pgconn.get_result()
            if result is None:
                break
            results.append(result)
        for result in results:
            if result.status == pq.ExecStatus.FATAL_ERROR:
                message = (result.error_message or b"").decode(self._encoding, "replace")
                raise StatementFailed(_first_line(message))
        return results


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "connection lost"


class DirectWriter:
    """Up to `size` direct connections running named statements, each opened when first
    needed and replaced once lost."""

    def __init__(self, url: str, queries: Mapping[str, str], size: int) -> None:
        self._url = url
        self._queries = queries
        self._statements: dict[str, tuple[bytes, tuple[str, ...]]] = {}
        self._idle: list[DirectConnection] = []
        self._slots = asyncio.Semaphore(size)

    async def write(self, query: str, params: Mapping[str, Any]) -> list[Row]:
        """Run the named statement as a transaction of its own; the rows of its last result."""
        if query not in self._statements:
            self._statements[query] = numbered(named_sql(self._queries, query))
        sql, names = self._statements[query]
        values = [text_parameter(params[name]) for name in names]
        async with self._slots:
            conn = await self._connection()
            try:
                results = await conn.execute(query, sql, values)
            finally:
                if conn.lost:
                    await conn.close()
                else:
                    self._idle.append(conn)
        return conn.rows(results[-1]) if results else []

    async def _connection(self) -> DirectConnection:
        while self._idle:
            conn = self._idle.pop()
            conn.read_input()
            if not conn.lost:
                return conn
            await conn.close()  # the server closed it while it was idle
        return await DirectConnection.connect(self._url)

    async def close(self) -> None:
        """Close the idle connections."""
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

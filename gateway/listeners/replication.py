"""A logical replication stream from one slot, read on the event loop without a thread.

psycopg 3 has no replication API, but since 3.3 `START_REPLICATION` on a `replication=database`
connection leaves it in the COPY_BOTH state, where libpq's copy functions carry the replication
protocol. The connection is nonblocking: `read` takes what libpq has buffered and otherwise waits
for the socket with the loop's reader callbacks, so a quiet stream costs no thread and no CPU.

From the server (each one CopyData message):

    XLogData 'w'    dataStart, walEnd, sendTime, then one pgoutput message
    Keepalive 'k'   walEnd, sendTime, replyRequested

To the server, the standby status update 'r' (write, flush and apply LSN, clientTime,
replyRequested): the flush LSN is `confirmed`, which only `confirm` raises. The server keeps every
transaction that commits after it and resends them to the next connection. A status update also
goes out every `status_interval_s`, even while the reader is paused on a batch being stored, so
that the server (`wal_sender_timeout`) does not drop a connection that is merely busy.

The session runs with DateStyle=ISO, TimeZone=UTC and bytea_output=hex: pgoutput renders column
values with the walsender's settings, and `pgoutput.convert_text` reads those formats.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeAlias

import psycopg
from psycopg import AsyncClientCursor, AsyncConnection, pq, sql

from gateway.errors import InvalidInput, NotFound
from gateway.listeners.pgoutput import POSTGRES_EPOCH, format_lsn, replication_time

logger = logging.getLogger(__name__)

SESSION_OPTIONS: Final = "-c DateStyle=ISO -c TimeZone=UTC -c bytea_output=hex"
APPLICATION_NAME: Final = "gateway-cdc"
PROTOCOL_VERSION: Final = "1"
_XLOG_HEADER: Final = struct.Struct("!QQq")
_KEEPALIVE: Final = struct.Struct("!Qq?")
_STATUS_UPDATE: Final = struct.Struct("!cQQQq?")
_FAIRNESS_MESSAGES: Final = 100
_MICROSECOND: Final = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class XLogData:
    """WAL data: one pgoutput message, which starts at `data_start`."""

    data_start: int
    wal_end: int
    send_time: datetime
    payload: bytes


@dataclass(frozen=True, slots=True)
class Keepalive:
    """The server's heartbeat: everything up to `wal_end` was sent (or had nothing to send)."""

    wal_end: int
    send_time: datetime
    reply_requested: bool


StreamMessage: TypeAlias = XLogData | Keepalive


class ReplicationStream:
    """One connection streaming a logical slot; see the module docstring for the protocol."""

    def __init__(
        self, conn: AsyncConnection[Any], start_lsn: int, status_interval_s: float
    ) -> None:
        self._conn = conn
        self._pgconn = conn.pgconn
        self._loop = asyncio.get_running_loop()
        self._confirmed = start_lsn
        self._status_interval_s = status_interval_s
        self._send_lock = asyncio.Lock()
        # The reader's and the senders' waits for the socket, and what each watches:
        # (descriptor, for writing).
        self._waits: dict[asyncio.Future[None], tuple[int, bool]] = {}
        self._failure: ConnectionError | None = None
        self._unbroken = 0  # messages read since the reader last gave the loop a turn
        self._closed = False
        self._feedback = self._loop.create_task(self._send_periodically(), name="cdc-feedback")

    @classmethod
    async def open(
        cls,
        params: Mapping[str, Any],
        slot: str,
        publication: str,
        *,
        start_lsn: int = 0,
        status_interval_s: float = 10.0,
    ) -> ReplicationStream:
        """Connect and start streaming `slot` for `publication` after `start_lsn`.

        The server starts at the slot's confirmed position when `start_lsn` is behind it.
        `NotFound` when the slot or the publication does not exist, `InvalidInput` when the slot
        cannot be streamed with pgoutput from this database, `ConnectionError` otherwise.
        """
        where = f"{params.get('host')}:{params.get('port')}/{params.get('dbname')}"
        try:
            conn = await AsyncConnection.connect(
                **params,
                replication="database",
                autocommit=True,
                options=SESSION_OPTIONS,
                client_encoding="UTF8",
                application_name=APPLICATION_NAME,
                cursor_factory=AsyncClientCursor,
            )
        except psycopg.Error as exc:
            raise ConnectionError(_connect_problem(where, exc)) from None
        try:
            await _check_slot(conn, where, slot)
            await _check_publication(conn, where, publication)
            await _start(conn, where, slot, publication, start_lsn)
        except BaseException:
            await conn.close()
            raise
        return cls(conn, start_lsn, status_interval_s)

    @property
    def confirmed(self) -> int:
        """The flush LSN this stream reports: every transaction committed before it is stored."""
        return self._confirmed

    def confirm(self, lsn: int) -> None:
        """Raise the reported flush LSN to `lsn` (never lowers it); the next update carries it."""
        self._confirmed = max(self._confirmed, lsn)

    async def send_status(self, *, reply_requested: bool = False) -> None:
        """Send a standby status update reporting `confirmed` now."""
        if self._failure is not None:
            raise self._failure
        lsn = self._confirmed
        now = (datetime.now(UTC) - POSTGRES_EPOCH) // _MICROSECOND
        message = _STATUS_UPDATE.pack(b"r", lsn, lsn, lsn, now, reply_requested)
        async with self._send_lock:
            try:
                while not self._pgconn.put_copy_data(message):
                    await self._wait(writable=True)
                while self._pgconn.flush():
                    await self._wait(writable=True)
            except psycopg.Error as exc:
                raise self._failed(f"cannot send a status update: {exc}") from None
        logger.debug(
            "confirmed %s to the server", format_lsn(lsn), extra={"action": "cdc_status_sent"}
        )

    async def read(self) -> StreamMessage:
        """The next message from the server; `ConnectionError` when the stream fails or ends."""
        while True:
            if self._failure is not None:
                raise self._failure
            if self._unbroken >= _FAIRNESS_MESSAGES:
                # A large transaction fills libpq's buffer faster than it is read: let the loop's
                # other tasks run now and then (before taking a message, which a cancellation
                # here would lose).
                self._unbroken = 0
                await asyncio.sleep(0)
            try:
                size, data = self._pgconn.get_copy_data(1)
                if size == 0:
                    self._unbroken = 0
                    await self._wait(writable=False)
                    self._pgconn.consume_input()
                    continue
            except psycopg.Error as exc:
                raise self._failed(f"the replication stream failed: {exc}") from None
            if size > 0:
                self._unbroken += 1
                return _parse(bytes(data))
            raise self._failed(f"the server ended the replication stream: {self._end_reason()}")

    async def close(self) -> None:
        """Stop the periodic updates and close the connection; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._feedback.cancel()
        await asyncio.wait([self._feedback])
        while self._waits:
            waiting, (fd, writable) = self._waits.popitem()
            (self._loop.remove_writer if writable else self._loop.remove_reader)(fd)
            if not waiting.done():
                waiting.set_exception(ConnectionError("the replication stream was closed"))
        await self._conn.close()

    async def _send_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._status_interval_s)
            try:
                await self.send_status()
            except ConnectionError as exc:
                # The reader meets the same failure and reports it.
                logger.debug("%s", exc, extra={"action": "cdc_status_failed"})
                return

    async def _wait(self, *, writable: bool) -> None:
        """Wait until the socket can be read (or written)."""
        if self._closed:
            raise ConnectionError("the replication stream was closed")
        fd = self._pgconn.socket
        ready: asyncio.Future[None] = self._loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        (self._loop.add_writer if writable else self._loop.add_reader)(fd, wake)
        self._waits[ready] = (fd, writable)
        try:
            await ready
        finally:
            # Whoever takes the wait out stops watching: this wait, or `close` before it closes
            # the descriptor (which may be another connection's by the time this wait resumes).
            if self._waits.pop(ready, None) is not None:
                (self._loop.remove_writer if writable else self._loop.remove_reader)(fd)

    def _failed(self, problem: str) -> ConnectionError:
        self._failure = ConnectionError(problem)
        return self._failure

    def _end_reason(self) -> str:
        result = self._pgconn.get_result()
        if result is not None and result.status == pq.ExecStatus.FATAL_ERROR:
            return (result.error_message or b"").decode("utf-8", "replace").strip()
        return "no error was given"


def _parse(data: bytes) -> StreamMessage:
    tag = data[:1]
    if tag == b"w" and len(data) >= 1 + _XLOG_HEADER.size:
        start, end, sent = _XLOG_HEADER.unpack_from(data, 1)
        return XLogData(start, end, replication_time(sent), data[1 + _XLOG_HEADER.size :])
    if tag == b"k" and len(data) == 1 + _KEEPALIVE.size:
        end, sent, reply = _KEEPALIVE.unpack_from(data, 1)
        return Keepalive(end, replication_time(sent), reply)
    raise ConnectionError(f"unexpected replication message {data[:32]!r}")


async def _check_slot(conn: AsyncConnection[Any], where: str, slot: str) -> None:
    cursor = await conn.execute(
        "SELECT slot_type, plugin, database, current_database() FROM pg_replication_slots"
        " WHERE slot_name = %s",
        [slot],
    )
    found = await cursor.fetchone()
    if found is None:
        raise NotFound(
            f"replication slot {slot!r} does not exist in {where}: create it (slot/create of the "
            "postgres_triggers API) or set the trigger's replication_slot_name to an existing one"
        )
    slot_type, plugin, database, current = found
    if slot_type != "logical" or plugin != "pgoutput":
        raise InvalidInput(
            "replication_slot_name",
            f"replication slot {slot!r} in {where} is a {slot_type} slot of plugin {plugin}; "
            "a logical slot of plugin pgoutput is needed",
        )
    if database != current:
        raise InvalidInput(
            "replication_slot_name",
            f"replication slot {slot!r} belongs to database {database!r}, not {current!r}",
        )


async def _check_publication(conn: AsyncConnection[Any], where: str, publication: str) -> None:
    cursor = await conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", [publication])
    if await cursor.fetchone() is None:
        raise NotFound(
            f"publication {publication!r} does not exist in {where}: create it (publication/"
            "create of the postgres_triggers API) or set the trigger's publication_name to an "
            "existing one"
        )


async def _start(
    conn: AsyncConnection[Any], where: str, slot: str, publication: str, start_lsn: int
) -> None:
    # publication_names is a list of identifiers inside a string: quote the name as one.
    command = sql.SQL(
        "START_REPLICATION SLOT {} LOGICAL {} (proto_version {}, publication_names {})"
    ).format(
        sql.Identifier(slot),
        sql.SQL(format_lsn(start_lsn)),
        sql.Literal(PROTOCOL_VERSION),
        sql.Literal(sql.Identifier(publication).as_string(conn)),
    )
    try:
        await conn.execute(command)
    except psycopg.errors.ObjectInUse as exc:
        raise ConnectionError(
            f"replication slot {slot!r} in {where} is streamed by another connection (another "
            f"gateway instance or client): {exc}"
        ) from None
    except psycopg.Error as exc:
        # Before 3.3, psycopg refuses the COPY_BOTH state START_REPLICATION leads to.
        hint = " (streaming needs psycopg 3.3 or later)" if "COPY" in str(exc) else ""
        raise ConnectionError(
            f"cannot start replication from {slot!r} in {where}: {exc}{hint}"
        ) from None


def _connect_problem(where: str, exc: psycopg.Error) -> str:
    problem = f"cannot connect to PostgreSQL at {where}: {str(exc).strip()}"
    if "startup parameter" in str(exc):
        problem += " (connection poolers cannot carry replication: connect to the server itself)"
    return problem

"""The SQLite store's writer process: `Store.write` run in a process of its own.

An SQLite statement runs in the gateway's process, under the interpreter lock its event loop
holds: a write handed to a thread waits for that lock at every statement and every SQL function,
and its result waits for the loop to look. For the writes a busy instance makes most (the jobs of
HTTP route requests, one batch at a time), that wait was most of the time the batch took. A
child process, `python -m gateway.store.sqlite_writer <database>`, holds a connection of its own
and runs them with nothing else competing: WAL mode lets it write beside the store's own
connection, each waiting for the other's write lock (`busy_timeout`).

The parent sends each write as a frame on the child's stdin (a 4-byte length, then JSON: the
query's name and its parameters, JSON values already as their text) and reads the replies from
its stdout in the same order, so that writes may be in flight one behind the other. A reply holds
the last statement's rows, or the error, and the notifications its `pg_notify()` calls asked for,
which the parent publishes. The child is started at the first write, started again at the next
write after it died (its writes in flight fail), and stopped when its stdin closes.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
import struct
import sys
from collections import deque
from datetime import datetime
from typing import Any, BinaryIO, Final
from uuid import UUID

import orjson

from gateway.errors import StoreError
from gateway.store.sqlite_connection import (
    PRAGMAS,
    format_timestamp,
    named_statements,
    sql_functions,
    to_json,
    write_statements,
)
from gateway.store.values import Json, Row

logger = logging.getLogger(__name__)

_LENGTH: Final = struct.Struct(">I")
STOP_TIMEOUT_S: Final = 5.0

Notes = list[tuple[str, str]]


class WriterProcess:
    """The parent's side: writes sent to the child, answered in order."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._process: asyncio.subprocess.Process | None = None
        self._replies: asyncio.Task[None] | None = None
        self._waiting: deque[asyncio.Future[dict[str, Any]]] = deque()
        self._starting = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def write(self, query: str, params: dict[str, Any]) -> tuple[list[Row], Notes]:
        """Run the named write in the child; its rows and the notifications to publish."""
        process = await self._started()
        assert process.stdin is not None
        frame = orjson.dumps({"query": query, "params": _wire_params(params)})
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        # Queued and written without an await in between: replies come in this order.
        self._waiting.append(answer)
        try:
            process.stdin.write(_LENGTH.pack(len(frame)) + frame)
        except (OSError, RuntimeError) as exc:
            self._waiting.remove(answer)
            raise StoreError(f"the SQLite writer process cannot be reached: {exc}") from exc
        reply = await answer
        if "error" in reply:
            raise StoreError(f"SQLite transaction failed: {reply['error']}")
        notes = [(channel, payload) for channel, payload in reply["notes"]]
        return reply["rows"], notes

    async def close(self) -> None:
        """Stop the child once the writes sent are answered."""
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()
        if self._replies is not None:
            await self._replies

    async def _started(self) -> asyncio.subprocess.Process:
        async with self._starting:
            if self._process is None or self._process.returncode is not None:
                self._process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", __name__, self._path,
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                )  # fmt: skip
                self._replies = asyncio.create_task(
                    self._read_replies(self._process), name="sqlite-writer:replies"
                )
            return self._process

    async def _read_replies(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        try:
            while True:
                head = await process.stdout.readexactly(_LENGTH.size)
                body = await process.stdout.readexactly(_LENGTH.unpack(head)[0])
                answer = self._waiting.popleft()
                if not answer.done():
                    answer.set_result(orjson.loads(body))
        except asyncio.IncompleteReadError:
            pass
        status = await process.wait()
        if self._waiting:
            logger.warning(
                "the SQLite writer process ended (status %s) with %d writes in flight",
                status,
                len(self._waiting),
                extra={"action": "sqlite_writer_ended"},
            )
        while self._waiting:
            answer = self._waiting.popleft()
            if not answer.done():
                answer.set_exception(StoreError("the SQLite writer process ended"))


def _wire_params(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters as JSON values, each as the SQLite adapters would bind it."""
    return {name: _wire_value(value) for name, value in params.items()}


def _wire_value(value: Any) -> Any:
    if isinstance(value, Json):
        return to_json(value.value)
    if isinstance(value, dict | list):
        return to_json(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    return value


# -- the child ----------------------------------------------------------------------------------


def serve(path: str, requests: BinaryIO, replies: BinaryIO) -> None:
    """Answer the writes framed on `requests` until it ends."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    for pragma in PRAGMAS:
        conn.execute(pragma)
    noted: Notes = []
    for name, (arity, function) in sql_functions().items():
        conn.create_function(name, arity, function)
    conn.create_function("pg_notify", 2, lambda channel, payload: noted.append((channel, payload)))
    while head := requests.read(_LENGTH.size):
        request = orjson.loads(requests.read(_LENGTH.unpack(head)[0]))
        try:
            statements = named_statements(request["query"])
            rows = write_statements(conn, statements, request["params"])
            reply: dict[str, Any] = {"rows": [dict(row) for row in rows], "notes": noted}
        except (sqlite3.Error, StoreError) as exc:
            reply = {"error": str(exc)}
        frame = orjson.dumps(reply)
        noted.clear()
        replies.write(_LENGTH.pack(len(frame)) + frame)
        replies.flush()
    conn.close()


if __name__ == "__main__":
    # A Ctrl-C reaches the whole process group: the child ends when the gateway closes its
    # stdin, after the writes in flight, not before.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)

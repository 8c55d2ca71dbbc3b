"""The direct PostgreSQL connections (`gateway.store.pg_direct`) on a real server: typed rows,
refused statements, notifications, and connections the server ends or a caller abandons."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import UUID

import psycopg
import pytest

from gateway.errors import StoreError
from gateway.store import open_store
from gateway.store.notify import ROUTES_CHANGED
from gateway.store.pg_direct import (
    ConnectionLost,
    DirectConnection,
    DirectWriter,
    StatementFailed,
    numbered,
)

QUERIES = {
    "typed": "SELECT CAST(:n AS int) AS n, CAST(:doc AS jsonb) AS doc, CAST(:id AS uuid) AS id, "
    "true AS yes, NULL::text AS nothing",
    "divide": "SELECT 1 / CAST(:d AS int) AS q",
    "backend": "SELECT pg_backend_pid() AS pid",
    "sleep": "SELECT pg_sleep(CAST(:s AS float8)) AS slept",
}

LISTENING = (
    "SELECT pid FROM pg_stat_activity "
    "WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
)
"""The server processes of the connections listening on the test's database."""
RUNNING = "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active'"
"""Whether server process `pid` is running a statement."""


@pytest.fixture
async def writer(postgres_url: str) -> AsyncIterator[DirectWriter]:
    writer = DirectWriter(postgres_url, QUERIES, size=1)
    yield writer
    await writer.close()


def terminate(url: str, pid: int) -> None:
    """End the server process `pid`, waiting until it is gone."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))


async def test_rows_come_back_as_python_values(writer: DirectWriter) -> None:
    job_id = UUID(int=7)

    rows = await writer.write("typed", {"n": 3, "doc": {"a": [1, None]}, "id": job_id})

    assert rows == [{"n": 3, "doc": {"a": [1, None]}, "id": job_id, "yes": True, "nothing": None}]


async def test_a_refused_statement_says_why_and_leaves_the_connection_usable(
    writer: DirectWriter,
) -> None:
    (before,) = await writer.write("backend", {})
    with pytest.raises(StatementFailed, match="division by zero"):
        await writer.write("divide", {"d": 0})

    assert await writer.write("divide", {"d": 1}) == [{"q": 1}]
    assert await writer.write("backend", {}) == [before]


async def test_an_unknown_statement_is_named_in_the_error(writer: DirectWriter) -> None:
    with pytest.raises(StoreError, match="no query named 'missing'"):
        await writer.write("missing", {})


async def test_a_connection_the_server_ended_is_replaced(
    writer: DirectWriter, postgres_url: str
) -> None:
    (before,) = await writer.write("backend", {})
    await asyncio.to_thread(terminate, postgres_url, before["pid"])

    (after,) = await writer.write("backend", {})

    assert after["pid"] != before["pid"]


async def test_an_interrupted_statement_gives_up_its_connection(
    writer: DirectWriter, postgres_url: str
) -> None:
    (before,) = await writer.write("backend", {})
    sleeping = asyncio.create_task(writer.write("sleep", {"s": 30}))
    # Cancelled once the server runs it: its answer is still to come.
    with psycopg.connect(postgres_url, autocommit=True) as other:
        for _ in range(100):  # the statement is sent at the task's first step: at most 10 s
            if other.execute(RUNNING, (before["pid"],)).fetchone():
                break
            await asyncio.sleep(0.1)
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping

    # Its answer would come to the next statement: a new connection runs that one.
    (after,) = await writer.write("backend", {})
    assert after["pid"] != before["pid"]


async def test_notifications_reach_the_handler_and_a_lost_connection_says_why(
    postgres_url: str,
) -> None:
    heard: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    conn = await DirectConnection.connect(
        postgres_url, lambda channel, payload: heard.put_nowait((channel, payload))
    )
    try:
        await conn.listen(["gw_one", "gw_two"])
        with psycopg.connect(postgres_url, autocommit=True) as other:
            other.execute("SELECT pg_notify('gw_two', 'hello'), pg_notify('gw_one', '')")
            listening = other.execute(LISTENING).fetchall()
        assert await asyncio.wait_for(heard.get(), 10) == ("gw_two", "hello")
        assert await asyncio.wait_for(heard.get(), 10) == ("gw_one", "")

        assert len(listening) == 1
        await asyncio.to_thread(terminate, postgres_url, listening[0][0])
        lost = await asyncio.wait_for(conn.wait_lost(), 10)
        assert isinstance(lost, ConnectionLost) and conn.lost
        sql, _ = numbered("SELECT 1")
        with pytest.raises(ConnectionLost):
            await conn.execute("one", sql, [])
    finally:
        await conn.close()


async def test_the_store_listens_again_after_its_connection_ended(postgres_url: str) -> None:
    store = await open_store(postgres_url)
    try:
        async with store.notifications.subscribe(ROUTES_CHANGED) as heard:
            with psycopg.connect(postgres_url, autocommit=True) as other:
                for _ in range(100):  # the listener connects in its own time: at most 10 s
                    if pids := other.execute(LISTENING).fetchall():
                        break
                    await asyncio.sleep(0.1)
                await asyncio.to_thread(terminate, postgres_url, pids[0][0])
                # A NOTIFY sent before it reconnected is not heard: send until one is.
                async with asyncio.timeout(20):
                    while True:
                        other.execute("SELECT pg_notify(%s, 'again')", (ROUTES_CHANGED,))
                        try:
                            if await asyncio.wait_for(heard.get(), 0.5) == "again":
                                break
                        except TimeoutError:
                            continue
    finally:
        await store.close()

"""The replication stream on its own, against the CDC cluster: periodic status updates, closing
under a pending read, and a server that ends the stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from gateway.listeners.postgres_config import connection_params, parse_resource
from gateway.listeners.replication import Keepalive, ReplicationStream

from ..support import eventually
from .cdc_cluster import STATUS_INTERVAL_S, CdcSource, cdc_resource, cdc_source

pytestmark = pytest.mark.integration


@asynccontextmanager
async def opened(source: CdcSource) -> AsyncIterator[ReplicationStream]:
    """A stream of the source's slot, closed at the end."""
    async with connection_params(parse_resource(cdc_resource())) as params:
        stream = await ReplicationStream.open(
            params, source.slot, source.publication, status_interval_s=STATUS_INTERVAL_S
        )
    try:
        yield stream
    finally:
        await stream.close()


async def first_keepalive(stream: ReplicationStream) -> Keepalive:
    """The server's first keepalive (it sends one while the client is behind its position)."""
    async with asyncio.timeout(10):
        while not isinstance(message := await stream.read(), Keepalive):
            pass
    return message


async def pending_after(task: asyncio.Future[Any], seconds: float) -> bool:
    """Whether `task` is still pending after `seconds`."""
    await asyncio.sleep(seconds)
    return not task.done()


async def test_a_confirmed_position_reaches_the_server_without_an_explicit_update() -> None:
    async with cdc_source() as source, opened(source) as stream:
        await source.run("CREATE TEMPORARY TABLE gw_wal (x int)")  # some WAL after the slot
        keepalive = await first_keepalive(stream)
        stream.confirm(keepalive.wal_end)

        async def reported() -> bool:
            return await source.confirmed() == keepalive.wal_end

        await eventually(reported, timeout_s=10)
        stream.confirm(0)  # a lower position is never reported
        assert stream.confirmed == keepalive.wal_end


async def test_closing_ends_a_pending_read() -> None:
    async with cdc_source() as source, opened(source) as stream:
        stream.confirm((await first_keepalive(stream)).wal_end)
        await stream.send_status()  # caught up: the server has nothing more to say
        reading = asyncio.ensure_future(stream.read())
        while not await pending_after(reading, 0.1):
            reading = asyncio.ensure_future(stream.read())

        await stream.close()
        await stream.close()  # idempotent

        with pytest.raises(ConnectionError, match="closed"):
            await reading


async def test_a_terminated_walsender_ends_the_stream_with_a_reason() -> None:
    async with cdc_source() as source, opened(source) as stream:
        await first_keepalive(stream)
        await source.run(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
            f" WHERE slot_name = '{source.slot}'"
        )

        ended = r"the server ended the replication stream: .*terminating"
        with pytest.raises(ConnectionError, match=ended):
            async with asyncio.timeout(10):
                while True:
                    await stream.read()
        with pytest.raises(ConnectionError):
            await stream.send_status()

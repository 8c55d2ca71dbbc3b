"""When the PostgreSQL listener confirms positions to the server, on a real cluster: only on ack,
again from the last confirmed position after a nack or a lost connection, and all the time while
idle, so that a quiet slot does not hold back the server's WAL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.listeners.base import Batch
from gateway.listeners.postgres import slot_lag
from gateway.listeners.postgres_config import parse_resource

from ..support import eventually
from .brokers import next_batch
from .cdc_cluster import (
    STATUS_INTERVAL_S,
    cdc_resource,
    cdc_source,
    listener_on,
    resource_store,
    streaming,
)

pytestmark = pytest.mark.integration


def ids(batch: Batch) -> list[int]:
    """The ids of the rows the batch's events changed."""
    return [event.payload["row"]["id"] for event in batch.events]


async def test_a_transaction_never_acked_is_streamed_again_after_reconnecting(
    tmp_path: Path,
) -> None:
    async with cdc_source() as source, resource_store(tmp_path) as store:
        async with streaming(listener_on(store, source.lease())) as stream:
            await source.run("INSERT INTO {full} (id) VALUES (1), (2)")
            unacked = await next_batch(stream)

        async with streaming(listener_on(store, source.lease())) as stream:
            replayed = await next_batch(stream)

    assert ids(replayed) == [1, 2]
    assert [e.dedup_key for e in replayed.events] == [e.dedup_key for e in unacked.events]


async def test_a_nacked_transaction_is_streamed_again(tmp_path: Path) -> None:
    async with cdc_source() as source, resource_store(tmp_path) as store:
        listener = listener_on(store, source.lease())
        async with streaming(listener) as stream:
            await source.run("INSERT INTO {full} (id) VALUES (1)")
            await source.run("INSERT INTO {full} (id) VALUES (2)")
            first = await next_batch(stream)
            await listener.ack(first)
            second = await next_batch(stream)

            await listener.nack(second)
            again = await next_batch(stream)
            await listener.ack(again)
            await source.run("INSERT INTO {full} (id) VALUES (3)")
            third = await next_batch(stream)

    assert (ids(first), ids(second), ids(again), ids(third)) == ([1], [2], [2], [3])
    assert [e.dedup_key for e in again.events] == [e.dedup_key for e in second.events]


async def test_an_acked_transaction_is_not_streamed_again(tmp_path: Path) -> None:
    async with cdc_source() as source, resource_store(tmp_path) as store:
        listener = listener_on(store, source.lease())
        async with streaming(listener) as stream:
            await source.run("INSERT INTO {full} (id) VALUES (1)")
            await source.run("INSERT INTO {full} (id) VALUES (2)")
            acked = await next_batch(stream)
            await listener.ack(acked)
            unacked = await next_batch(stream)

            # The server takes the ack's status update in its own time.
            async def acked_confirmed() -> bool:
                return bool(await source.confirmed() >= acked.ack_token.end_lsn)

            await eventually(acked_confirmed, timeout_s=10)
        confirmed = await source.confirmed()

        async with streaming(listener_on(store, source.lease())) as stream:
            replayed = await next_batch(stream)

    assert ids(replayed) == [2]
    assert confirmed < unacked.ack_token.end_lsn


async def test_the_confirmed_position_waits_for_the_ack(tmp_path: Path) -> None:
    async with cdc_source() as source, resource_store(tmp_path) as store:
        listener = listener_on(store, source.lease())
        async with streaming(listener) as stream:
            await source.run("INSERT INTO {full} (id) VALUES (1)")
            batch = await next_batch(stream)
            end_lsn = batch.ack_token.end_lsn
            await asyncio.sleep(3 * STATUS_INTERVAL_S)  # status updates go out meanwhile
            held = await source.confirmed()

            await listener.ack(batch)

            async def confirmed() -> bool:
                return bool(await source.confirmed() >= end_lsn)

            await eventually(confirmed, timeout_s=10)

    assert held < end_lsn


async def test_an_idle_slot_keeps_confirming_while_other_tables_change(tmp_path: Path) -> None:
    async with cdc_source() as source, resource_store(tmp_path) as store:
        await source.run("CREATE TABLE {full}_other (id serial PRIMARY KEY, v text)")
        try:
            async with streaming(listener_on(store, source.lease())) as stream:
                # Consumed as the supervisor consumes it; nothing comes for the publication.
                reader = asyncio.ensure_future(anext(stream))
                try:
                    start = await source.confirmed()
                    for _ in range(20):
                        await source.run("INSERT INTO {full}_other (v) VALUES ('unpublished')")
                    written = await source.lsn()

                    async def caught_up() -> bool:
                        return await source.confirmed() >= written

                    await eventually(caught_up, timeout_s=10)
                    lag = await slot_lag(parse_resource(cdc_resource()), source.slot)
                finally:
                    reader.cancel()
                    await asyncio.wait([reader])
        finally:
            await source.run("DROP TABLE {full}_other")

    assert reader.cancelled()  # no batch came
    assert start < written
    assert lag.active
    assert lag.lag_bytes is not None
    assert lag.lag_bytes < 64 * 1024
    assert lag.confirmed_flush_lsn is not None
    assert lag.confirmed_flush_lsn >= written

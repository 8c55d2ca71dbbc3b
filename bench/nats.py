"""The NATS JetStream benchmark: how fast the gateway turns stream messages into committed jobs,
against what a Python consumer can reach on the same server and the same database servers.

`MESSAGES` small messages are published into a JetStream stream (file storage) of the server
`GATEWAY_TEST_NATS` names. The pipelines are those of the Kafka benchmark (`bench/kafka.py`, which
describes them), with a durable pull consumer in place of a consumer group:

- the gateway, on PostgreSQL and on SQLite: the JetStream listener fetches up to its `MAX_BATCH`
  messages, the batch is one job transaction, then each message is acked; on PostgreSQL the
  next batch is fetched while the previous one commits, two batches of 500 (the consumer's
  `max_ack_pending`, the server's default 1000, shared between them);
- the minimal durable pipeline: `fetch(RAW_FETCH)` -> one COPY (PostgreSQL) or one multi-row
  INSERT (SQLite) of `(stream/sequence, payload)` -> commit -> ack each message (nats-py acks
  one message at a time; with explicit acks, so does the server);
- the naive pipeline: `fetch(1)` -> one INSERT in its own transaction -> ack, on PostgreSQL, for
  the first `NAIVE_MESSAGES` messages;
- the raw fetch loop alone, on a consumer that needs no acks;
- for the record, the minimal durable pipeline on PostgreSQL again with the gateway's batches
  (`fetch(MAX_BATCH)`);
- the job-row ceiling: `fetch(MAX_BATCH)` -> the three rows the gateway writes per message
  (`event_dedup`, `v2_job`, `v2_job_queue`) as COPY text built by hand, into a database migrated
  with the gateway's schema -> commit -> ack each message.

Every pipeline reads a stream of its own holding the same messages, so that the latency messages
published while one gateway runs are not read by the next. Rates run from the first fetch (the
start of the lease supervisor, for the gateway) to the commit of the last message. One round;
the last line printed is one JSON object with the figures and `pg_vs_raw`, `sqlite_vs_raw`,
`pg_vs_naive` and `pg_vs_raw_jobrows`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from bench.common import report
from bench.kafka import (
    DIALECTS,
    LATENCY_MESSAGES,
    LATENCY_RATE,
    MESSAGES,
    NAIVE_MESSAGES,
    RESOURCE_PATH,
    RUN_TIMEOUT_S,
    GatewayFigures,
    RawTable,
    Row,
    RunFailed,
    check_stored,
    checked_rate,
    main_of,
    measure,
    payload,
    percentile,
    postgres_copy_table,
    postgres_job_rows,
    postgres_row_table,
    record_gateway,
    report_ratios,
    running_gateway,
    sqlite_insert_table,
)
from gateway.listeners.nats import MAX_BATCH, listener_factory

SERVER: Final = os.environ.get("GATEWAY_TEST_NATS", "nats://127.0.0.1:4222")
RAW_FETCH: Final = 1_000
"""Messages the raw pipelines ask for per fetch: the server's default `max_ack_pending`."""
FETCH_TIMEOUT_S: Final = 1.0
CONSUMER: Final = "bench"


@dataclass(frozen=True, slots=True)
class Stream:
    """A stream of the benchmark and its one subject."""

    name: str
    subject: str


@asynccontextmanager
async def connection() -> AsyncIterator[NatsClient]:
    """A connection to the benchmark's server, closed afterwards."""
    client = await nats.connect(SERVER)
    try:
        yield client
    finally:
        await client.close()


async def filled_stream(client: NatsClient, *, ack: bool = True) -> Stream:
    """A new stream holding `MESSAGES` messages, with the durable pull consumer `CONSUMER`
    reading it from the start (explicit acks, or none when not `ack`)."""
    name = f"GWBENCH_{uuid.uuid4().hex[:12]}"
    stream = Stream(name, f"gwbench.{name}")
    js = client.jetstream()
    await js.add_stream(name=name, subjects=[stream.subject])
    for n in range(MESSAGES - 1):
        # Core publishes are stored by the stream all the same, without a round trip each.
        await client.publish(stream.subject, payload(n))
        if n % 1_000 == 999:
            await client.flush()
    # The stream stores one connection's messages in order: once the last one is acknowledged,
    # every one before it is stored.
    await js.publish(stream.subject, payload(MESSAGES - 1))
    stored = (await js.stream_info(name)).state.messages
    if stored != MESSAGES:
        raise RunFailed(f"stream {name} holds {stored} of the {MESSAGES} messages published")
    await js.add_consumer(
        name,
        ConsumerConfig(
            durable_name=CONSUMER,
            ack_policy=AckPolicy.EXPLICIT if ack else AckPolicy.NONE,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=stream.subject,
        ),
    )
    return stream


async def publish_rate(client: NatsClient) -> float:
    """Messages per second stored by a stream (deleted afterwards), from publish to stored."""
    started = time.perf_counter()
    stream = await filled_stream(client)
    elapsed = time.perf_counter() - started
    await client.jetstream().delete_stream(stream.name)
    return MESSAGES / elapsed


def rows_of(messages: Sequence[Msg]) -> list[Row]:
    """The `(stream/sequence, payload)` rows of messages."""
    return [(f"{m.metadata.stream}/{m.metadata.sequence.stream}", m.data) for m in messages]


async def drain(
    client: NatsClient,
    stream: Stream,
    batch: int,
    count: int,
    handle: Callable[[list[Msg]], Awaitable[None]],
) -> float:
    """Fetch `batch` messages at a time from `CONSUMER` and `handle` each batch until `count`
    were taken, then delete the stream; the seconds from the first fetch to the last handling."""
    pull = await client.jetstream().pull_subscribe_bind(durable=CONSUMER, stream=stream.name)
    taken = 0
    started = time.perf_counter()
    try:
        async with asyncio.timeout(RUN_TIMEOUT_S):
            while taken < count:
                try:
                    messages = await pull.fetch(batch, timeout=FETCH_TIMEOUT_S)
                except nats.errors.TimeoutError:
                    continue
                await handle(messages)
                taken += len(messages)
        return time.perf_counter() - started
    finally:
        await pull.unsubscribe()
        await client.jetstream().delete_stream(stream.name)


async def raw_fetch_rate(client: NatsClient) -> float:
    """`fetch(RAW_FETCH)` alone, on a consumer without acks, until every message was read."""

    async def nothing(messages: list[Msg]) -> None:
        """Read, and that is all."""

    stream = await filled_stream(client, ack=False)
    return MESSAGES / await drain(client, stream, RAW_FETCH, MESSAGES, nothing)


def store_then_ack(table: RawTable) -> Callable[[list[Msg]], Awaitable[None]]:
    """Handles a batch: stores it in one transaction, then acks each message."""

    async def handle(messages: list[Msg]) -> None:
        await table.write(rows_of(messages))
        for message in messages:
            await message.ack()

    return handle


async def durable_rate(client: NatsClient, table: RawTable, batch: int = RAW_FETCH) -> float:
    """`fetch(batch)` -> the batch in one transaction -> ack each, until all are stored."""
    stream = await filled_stream(client)
    elapsed = await drain(client, stream, batch, MESSAGES, store_then_ack(table))
    return checked_rate(MESSAGES, elapsed, await table.count(), "raw pipeline")


async def naive_rate(client: NatsClient, table: RawTable) -> float:
    """`fetch(1)` -> one INSERT transaction -> ack, for `NAIVE_MESSAGES` messages."""
    stream = await filled_stream(client)
    elapsed = await drain(client, stream, 1, NAIVE_MESSAGES, store_then_ack(table))
    return checked_rate(NAIVE_MESSAGES, elapsed, await table.count(), "naive pipeline")


async def gateway_figures(client: NatsClient, dialect: str) -> GatewayFigures:
    """The gateway's rate over a full stream, then its latency at `LATENCY_RATE`."""
    stream = await filled_stream(client)
    resource = ("nats", {"servers": [SERVER]})
    trigger = {
        "nats_resource_path": RESOURCE_PATH,
        "subjects": [stream.subject],
        "use_jetstream": True,
        "stream_name": stream.name,
        "consumer_name": CONSUMER,
    }
    started = time.perf_counter()
    async with running_gateway(dialect, "nats", listener_factory, resource, trigger) as run:
        await run.sink.wait_for(MESSAGES, f"gateway on {dialect}")
        per_s = MESSAGES / (run.sink.last_commit_at - started)
        run.sink.measure_latency()
        paced_from = time.perf_counter()
        for n in range(LATENCY_MESSAGES):
            await asyncio.sleep(max(0.0, paced_from + n / LATENCY_RATE - time.perf_counter()))
            await client.publish(stream.subject, payload(n, sent=True))
        await client.flush()
        await run.sink.wait_for(MESSAGES + LATENCY_MESSAGES, f"gateway on {dialect}")
        jobs = await run.jobs()
        latencies = run.sink.latencies_ms or [0.0]
    await client.jetstream().delete_stream(stream.name)
    check_stored(MESSAGES + LATENCY_MESSAGES, jobs, f"gateway on {dialect}")
    return GatewayFigures(per_s, percentile(latencies, 50), percentile(latencies, 99))


async def run() -> dict[str, float]:
    """Every figure, in one round on one server."""
    figures: dict[str, float] = {"messages": MESSAGES}
    async with connection() as client:
        figures["publish_per_s"] = await publish_rate(client)
        report(f"publish {MESSAGES} messages into a stream", figures["publish_per_s"], "msg/s")
        await measure(
            f"raw: fetch({RAW_FETCH}) alone, no acks", "raw_consume_per_s",
            raw_fetch_rate(client), figures,
        )  # fmt: skip
        async with postgres_copy_table() as table:
            await measure(
                f"raw: fetch({RAW_FETCH}) -> COPY (postgresql) -> ack", "raw_pg_per_s",
                durable_rate(client, table), figures,
            )  # fmt: skip
        async with postgres_copy_table() as table:
            await measure(
                f"raw, the gateway's batches: fetch({MAX_BATCH}) -> COPY (postgresql) -> ack",
                "raw_pg_gateway_batch_per_s", durable_rate(client, table, MAX_BATCH), figures,
            )  # fmt: skip
        async with postgres_job_rows("nats") as table:
            await measure(
                f"raw job rows: fetch({MAX_BATCH}) -> 3 COPYs (postgresql) -> ack",
                "raw_jobrows_pg_per_s", durable_rate(client, table, MAX_BATCH), figures,
            )  # fmt: skip
        async with sqlite_insert_table() as table:
            await measure(
                f"raw: fetch({RAW_FETCH}) -> multi-row INSERT (sqlite) -> ack",
                "raw_sqlite_per_s", durable_rate(client, table), figures,
            )  # fmt: skip
        async with postgres_row_table() as table:
            await measure(
                f"naive: fetch(1) -> INSERT -> ack (first {NAIVE_MESSAGES})", "naive_pg_per_s",
                naive_rate(client, table), figures,
            )  # fmt: skip
        for dialect in DIALECTS:
            gateway = await gateway_figures(client, dialect)
            record_gateway("nats jetstream", dialect, gateway, figures)
    report_ratios(figures)
    return figures


main = main_of(run)

if __name__ == "__main__":
    sys.exit(main())

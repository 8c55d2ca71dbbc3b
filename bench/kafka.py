"""The Kafka benchmark: how fast the gateway turns Kafka records into committed jobs, against
what a Python consumer can reach on the same broker and the same database servers.

`MESSAGES` small records are produced once into a topic of `PARTITIONS` partitions of the broker
`GATEWAY_TEST_KAFKA` names; every pipeline then reads them all with a consumer group of its own:

- the gateway, on PostgreSQL and on SQLite: the lease supervisor runs the Kafka listener with
  the fenced `TriggerJobSink` under a `SqlLeaseStore` lease (the executor off: the jobs stay
  queued); each fetch of up to `ConsumerOptions.max_batch` records is one job transaction, and
  its offsets are committed after it, while the next fetches are already being submitted;
- the minimal durable pipeline: `getmany()` -> the whole fetch as one COPY (PostgreSQL) or one
  multi-row INSERT (SQLite) of `(source id, payload)` into a plain table keyed by the source id
  -> commit -> commit the offsets;
- the naive pipeline a per-event design gives: one record -> one INSERT in its own transaction
  -> one offset commit, on PostgreSQL;
- the raw consume loop alone;
- for the record, the minimal durable pipeline on PostgreSQL again with the gateway's batches
  (`max_records=ConsumerOptions.max_batch`): what is left of the gap is the cost of jobs;
- the job-row ceiling: the same, but each batch is the three rows the gateway writes per record
  (`event_dedup`, `v2_job`, `v2_job_queue`, the columns of its own COPY statements) as COPY
  text built by hand, into a database migrated with the gateway's schema: what PostgreSQL
  needs for the job model alone, the most the gateway could reach on it.

Each rate is measured from the moment the consumer group assigns the partitions (the group join,
seconds on Tansu, is left out) to the commit of the last record. The naive pipeline is measured on
the first `NAIVE_MESSAGES` records: its rate is steady, and all `MESSAGES` would take minutes.
Then, with the gateway caught up, `LATENCY_MESSAGES` records carrying their send time are
produced at `LATENCY_RATE` per second, and the time from send to the commit of their job gives
the p50 and p99 latency. The same is measured for a bare consumer: Tansu answers a fetch only
after about half of `fetch.max.wait.ms` (aiokafka's default: 500) even when records are waiting,
which puts a floor of about 125 ms (p50) under any consumer's latency on it.

One round: on a machine shared with other work the figures vary from run to run, the small ones
by up to 2x. The last line printed
is one JSON object with the figures and the ratios `pg_vs_raw`, `sqlite_vs_raw` (targets >= 0.5),
`pg_vs_naive` (target >= 20) and `pg_vs_raw_jobrows` (the gateway over the job-row ceiling).

The store-side machinery (`MeasuringSink`, `running_gateway`, the raw tables, the job rows) is
shared with the NATS benchmark, `bench/nats.py`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import sqlite3
import statistics
import sys
import time
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import chain
from typing import Any, Final
from uuid import UUID

import aiosqlite
import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.common import report, run_and_report
from bench.queue import migrated_store, scratch_database, scratch_sqlite, scratch_url
from gateway.clock import SystemClock
from gateway.jobs.job_ids import new_job_ids
from gateway.listeners.base import JobSink, ListenerFactory
from gateway.listeners.kafka import listener_factory
from gateway.listeners.kafka_config import ConsumerOptions
from gateway.listeners.lease import Lease
from gateway.listeners.sql_lease_store import SqlLeaseStore
from gateway.listeners.supervisor import LeaseSupervisor, LeaseTimings
from gateway.observability.alerts import StoreAlertSink
from gateway.scripts import ScriptDraft, save_script
from gateway.store import Json, Store
from gateway.store.queries import load_queries
from gateway.store.trigger_tables import COLUMN_DEFAULTS, TRIGGER_TABLES
from gateway.triggers.event import Event
from gateway.triggers.pipeline import TriggerJobSink
from gateway.workspaces import Identity, ensure_workspace

MESSAGES: Final = 100_000
NAIVE_MESSAGES: Final = 5_000
LATENCY_MESSAGES: Final = 3_000
LATENCY_RATE: Final = 1_000
"""Records per second while the latency is measured, well under what the gateway takes."""
PARTITIONS: Final = 4
RUN_TIMEOUT_S: Final = 300.0
"""A pipeline that has not taken every message by then fails the benchmark."""
SQLITE_MAX_ROWS: Final = 10_000
"""Rows of one INSERT statement: two parameters a row, under SQLite's 32766 variables."""

BROKER: Final = os.environ.get("GATEWAY_TEST_KAFKA", "127.0.0.1:29092")
WORKSPACE: Final = "bench"
OWNER: Final = Identity("bench", "bench@example.com")
SCRIPT_PATH: Final = "f/bench/echo"
RESOURCE_PATH: Final = "f/bench/broker"
TIMINGS: Final = LeaseTimings(
    claim_interval_s=1, ping_interval_s=1, stale_after_s=5, backoff_base_s=0.1, backoff_cap_s=1
)
# Tansu holds a group join for about half the rebalance timeout: keep it short, for every consumer.
CONSUMER_TIMINGS: Final = {
    "session_timeout_ms": 6_000,
    "heartbeat_interval_ms": 500,
    "rebalance_timeout_ms": 2_000,
}
GATEWAY_OPTIONS: Final = ConsumerOptions(**CONSUMER_TIMINGS)
"""The listener's defaults (batches of 100 records, ...), but for the group timings."""

POSTGRES_EVENT_TABLE: Final = (
    "CREATE TABLE event (source_id text PRIMARY KEY, payload bytea NOT NULL)"
)
Row = tuple[str, bytes]
"""What a raw pipeline stores of a message: its source id and its payload."""


class RunFailed(Exception):
    """A pipeline did not take every message in time, or stored a wrong count."""


# The store side, shared with bench/nats.py ------------------------------------------------------


def payload(n: int, *, sent: bool = False) -> bytes:
    """A small JSON message; with `sent`, it carries its send time for the latency figures."""
    if sent:
        return b'{"n": %d, "sent_ns": %d}' % (n, time.time_ns())
    return b'{"n": %d}' % n


class MeasuringSink:
    """The gateway's job sink, counting the events whose jobs it committed.

    While `measure_latency` is on, it also records, for each event, the milliseconds from the send
    time its payload carries to the commit of its job.
    """

    def __init__(self, inner: JobSink) -> None:
        self._inner = inner
        self.committed = 0
        self.last_commit_at = 0.0
        self.latencies_ms: list[float] | None = None
        self._progress = asyncio.Event()

    def measure_latency(self) -> None:
        """Record the latency of every event committed from now on."""
        self.latencies_ms = []

    async def submit(self, lease: Lease, events: Sequence[Event]) -> list[UUID]:
        """Submit to the real sink, then count the events (and time them)."""
        ids = await self._inner.submit(lease, events)
        committed_ns = time.time_ns()
        self.last_commit_at = time.perf_counter()
        self.committed += len(events)
        if self.latencies_ms is not None:
            for event in events:
                sent_ns = json.loads(event.raw)["sent_ns"]
                self.latencies_ms.append((committed_ns - sent_ns) / 1e6)
        self._progress.set()
        return ids

    async def wait_for(self, count: int, what: str) -> None:
        """Until `count` events are committed; RunFailed after `RUN_TIMEOUT_S`."""
        try:
            async with asyncio.timeout(RUN_TIMEOUT_S):
                while self.committed < count:
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            raise RunFailed(f"{what}: {self.committed} of {count} jobs after the timeout") from None


@dataclass(frozen=True, slots=True)
class GatewayRun:
    """A gateway consuming one trigger: its sink, and how to count the jobs it made."""

    sink: MeasuringSink
    database_url: str
    trigger_path: str

    async def jobs(self) -> int:
        """The jobs of the trigger in the database."""
        return await count_rows(
            self.database_url, "SELECT count(*) FROM v2_job WHERE trigger = ?", self.trigger_path
        )


@asynccontextmanager
async def running_gateway(
    dialect: str,
    kind: str,
    factory: Callable[[Store], ListenerFactory],
    resource: tuple[str, Mapping[str, Any]],
    trigger: Mapping[str, Any],
) -> AsyncIterator[GatewayRun]:
    """A lease supervisor consuming one `kind` trigger into an empty `dialect` store.

    `resource` is the resource type and value, `trigger` the kind's config columns; the jobs
    run the script `SCRIPT_PATH`, `main(msg: str)`.
    """
    async with scratch_url(dialect, f"gateway_{kind}") as url, migrated_store(url) as store:
        path = await add_trigger(store, kind, resource, trigger)
        sink = MeasuringSink(TriggerJobSink(store))
        supervisor = LeaseSupervisor(
            "bench",
            store=SqlLeaseStore(store),
            factories={kind: factory(store)},
            sink=sink,
            alerts=StoreAlertSink(store),
            timings=TIMINGS,
            clock=SystemClock(),
        )
        await supervisor.start()
        try:
            yield GatewayRun(sink, url, path)
        finally:
            await supervisor.stop(drain_timeout_s=5)


async def add_trigger(
    store: Store, kind: str, resource: tuple[str, Mapping[str, Any]], trigger: Mapping[str, Any]
) -> str:
    """The workspace, the script, the resource and an enabled `kind` trigger; its path."""
    path = f"f/bench/{kind}_{uuid.uuid4().hex[:8]}"
    resource_type, resource_value = resource
    columns = TRIGGER_TABLES[kind].writable_columns
    values = {column: COLUMN_DEFAULTS.get(column) for column in columns if column != "edited_at"}
    values.update(
        path=path, script_path=SCRIPT_PATH, is_flow=False, workspace_id=WORKSPACE,
        edited_by=OWNER.username, email=OWNER.email, permissioned_as=OWNER.permissioned_as,
        **trigger,
    )  # fmt: skip
    draft = ScriptDraft(
        path=SCRIPT_PATH, content="def main(msg: str):\n    return msg\n", language="python3"
    )
    async with store.transaction() as tx:
        await ensure_workspace(tx, WORKSPACE, OWNER)
        await save_script(tx, WORKSPACE, draft, OWNER.username)
        await tx.execute(
            "upsert_resource", workspace_id=WORKSPACE, path=RESOURCE_PATH,
            value=Json(dict(resource_value)), description="", resource_type=resource_type,
            created_by=OWNER.username,
        )  # fmt: skip
        await tx.execute(f"upsert_{kind}_trigger", **values)
    return path


async def count_rows(url: str, query: str, *params: Any) -> int:
    """The count a `SELECT count(*)` query (with `?` placeholders) returns on either dialect."""
    if url.startswith("sqlite:"):

        def count() -> int:
            with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
                return int(conn.execute(query, params).fetchone()[0])

        return await asyncio.to_thread(count)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(query.replace("?", "%s"), params)
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


class RawTable:
    """The plain table of a raw pipeline: `event(source_id PRIMARY KEY, payload)`.

    The key is what makes a redelivery harmless, the least a durable pipeline needs. The job-row
    ceiling counts its `v2_job` rows instead.
    """

    def __init__(
        self, url: str, write: Callable[[Sequence[Row]], Awaitable[None]], table: str = "event"
    ) -> None:
        self.url = url
        self.write = write
        """Store the rows in one transaction."""
        self.table = table

    async def count(self) -> int:
        """The rows stored."""
        return await count_rows(self.url, f"SELECT count(*) FROM {self.table}")


@asynccontextmanager
async def postgres_copy_table() -> AsyncIterator[RawTable]:
    """A raw table on PostgreSQL, written one COPY per transaction."""
    async with (
        scratch_database("raw_copy") as url,
        await psycopg.AsyncConnection.connect(url) as conn,
    ):
        await conn.execute(POSTGRES_EVENT_TABLE)
        await conn.commit()

        async def write(rows: Sequence[Row]) -> None:
            async with (
                conn.cursor() as cursor,
                cursor.copy("COPY event (source_id, payload) FROM STDIN") as copy,
            ):
                for row in rows:
                    await copy.write_row(row)
            await conn.commit()

        yield RawTable(url, write)


class JobRowsText:
    """The COPY text of the rows the gateway writes for each message of a `kind` trigger running
    `SCRIPT_PATH` (`main(msg: str)`), in the column order of its own COPY statements; the columns
    every job of the trigger shares are built once."""

    def __init__(self, kind: str) -> None:
        path = f"f/bench/{kind}_ceiling"
        null = "\\N"
        self._dedup_prefix = f"{WORKSPACE}\t{kind}:{path}:"
        # created_at .. preprocessed (`now` is the transaction's start, as the gateway's clock).
        self._job = "\t".join((
            "now", null, null, "python3", WORKSPACE, f"{kind}-{path}", OWNER.permissioned_as,
            OWNER.email, "script", "1", SCRIPT_PATH, null, null, "python3", null, null, path, kind,
            null, null, null,
        ))  # fmt: skip
        # workspace_id .. priority
        self._queue = "\t".join((WORKSPACE, "now", "now", "f", null, "python3", null))

    def copy_text(self, rows: Sequence[Row]) -> tuple[str, str, str]:
        """The `event_dedup`, `v2_job` and `v2_job_queue` text of messages' rows (the job ids
        drawn as the gateway draws them)."""
        dedup, jobs, queue = [], [], []
        for (source_id, value), job_id in zip(rows, new_job_ids(len(rows)), strict=True):
            args = json.dumps({"msg": value.decode()}).replace("\\", "\\\\")
            dedup.append(f"{self._dedup_prefix}{source_id}\t{job_id}\n")
            jobs.append(f"{job_id}\t{self._job}\t{args}\t\\N\n")
            queue.append(f"{job_id}\t{self._queue}\n")
        return "".join(dedup), "".join(jobs), "".join(queue)


@asynccontextmanager
async def postgres_job_rows(kind: str) -> AsyncIterator[RawTable]:
    """The job-row ceiling on PostgreSQL: a database migrated with the gateway's schema, each
    batch the rows of `JobRowsText`, one COPY per table, in one transaction."""
    queries = load_queries("postgresql")
    copies = [queries[name] for name in ("copy_dedup_keys", "copy_jobs", "copy_queue_rows")]
    text = JobRowsText(kind)
    async with scratch_database("raw_jobrows") as url:
        async with migrated_store(url):
            pass
        async with await psycopg.AsyncConnection.connect(url) as conn:

            async def write(rows: Sequence[Row]) -> None:
                async with conn.cursor() as cursor:
                    for statement, data in zip(copies, text.copy_text(rows), strict=True):
                        async with cursor.copy(statement) as copy:
                            await copy.write(data)
                await conn.commit()

            yield RawTable(url, write, "v2_job")


@asynccontextmanager
async def postgres_row_table() -> AsyncIterator[RawTable]:
    """A raw table on PostgreSQL, written one INSERT per transaction (the naive pipeline)."""
    async with (
        scratch_database("raw_naive") as url,
        await psycopg.AsyncConnection.connect(url, autocommit=True) as conn,
    ):
        await conn.execute(POSTGRES_EVENT_TABLE)

        async def write(rows: Sequence[Row]) -> None:
            for row in rows:
                await conn.execute("INSERT INTO event (source_id, payload) VALUES (%s, %s)", row)

        yield RawTable(url, write)


@asynccontextmanager
async def sqlite_insert_table() -> AsyncIterator[RawTable]:
    """A raw table on SQLite (the gateway's pragmas), one multi-row INSERT per transaction."""
    async with scratch_sqlite() as url, aiosqlite.connect(url.removeprefix("sqlite:///")) as conn:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL"):
            await conn.execute(f"PRAGMA {pragma}")
        await conn.execute("CREATE TABLE event (source_id TEXT PRIMARY KEY, payload BLOB NOT NULL)")
        await conn.commit()

        async def write(rows: Sequence[Row]) -> None:
            # A fetch can exceed one statement's variables: then it takes several, still one
            # transaction.
            for first in range(0, len(rows), SQLITE_MAX_ROWS):
                chunk = rows[first : first + SQLITE_MAX_ROWS]
                values = ", ".join(["(?, ?)"] * len(chunk))
                flat = [value for row in chunk for value in row]
                await conn.execute(f"INSERT INTO event (source_id, payload) VALUES {values}", flat)
            await conn.commit()

        yield RawTable(url, write)


def percentile(values: Sequence[float], q: int) -> float:
    """The q-th percentile (1..99) of `values`."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def measure(label: str, key: str, take: Awaitable[float], figures: dict[str, float]) -> None:
    """Take one rate, print it and keep it under `key`."""
    figures[key] = await take
    report(label, figures[key], "msg/s")


DIALECTS: Final = ("postgresql", "sqlite")
_SHORT: Final = {"postgresql": "pg", "sqlite": "sqlite"}


def record_gateway(
    source: str, dialect: str, gateway: GatewayFigures, figures: dict[str, float]
) -> None:
    """Add and print the gateway's figures on `dialect` (`gateway_<pg|sqlite>_*`)."""
    short = _SHORT[dialect]
    figures[f"gateway_{short}_per_s"] = gateway.per_s
    figures[f"gateway_{short}_p50_ms"] = gateway.p50_ms
    figures[f"gateway_{short}_p99_ms"] = gateway.p99_ms
    report(f"gateway: {source} -> jobs on {dialect}", gateway.per_s, "msg/s")
    report(f"gateway {dialect}: publish -> committed job p50", gateway.p50_ms, "ms")
    report(f"gateway {dialect}: publish -> committed job p99", gateway.p99_ms, "ms")


def report_ratios(figures: dict[str, float]) -> None:
    """Add and print the gateway's rates over the raw and naive pipelines'."""
    figures["pg_vs_raw"] = figures["gateway_pg_per_s"] / figures["raw_pg_per_s"]
    figures["sqlite_vs_raw"] = figures["gateway_sqlite_per_s"] / figures["raw_sqlite_per_s"]
    figures["pg_vs_naive"] = figures["gateway_pg_per_s"] / figures["naive_pg_per_s"]
    figures["pg_vs_raw_jobrows"] = figures["gateway_pg_per_s"] / figures["raw_jobrows_pg_per_s"]
    report("pg_vs_raw (target >= 0.5)", figures["pg_vs_raw"], "x")
    report("sqlite_vs_raw (target >= 0.5)", figures["sqlite_vs_raw"], "x")
    report("pg_vs_naive (target >= 20)", figures["pg_vs_naive"], "x")
    report("pg_vs_raw_jobrows (the job-row ceiling)", figures["pg_vs_raw_jobrows"], "x")


def main_of(run: Callable[[], Coroutine[Any, Any, dict[str, float]]]) -> Callable[[], int]:
    """The entry point of a broker benchmark, failing on a run that lost messages or timed out."""
    return functools.partial(run_and_report, run, (RunFailed, TimeoutError))


# Kafka ----------------------------------------------------------------------------------------


class AssignmentClock(logging.Handler, ConsumerRebalanceListener):  # type: ignore[misc]
    """When partitions were last assigned: to a raw consumer (as its rebalance listener) or to
    the gateway's (from the listener's `partitions_assigned` log record)."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.assigned_at: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        """Note the time of the gateway listener's assignment."""
        if getattr(record, "action", None) == "partitions_assigned":
            self.assigned_at = time.perf_counter()

    async def on_partitions_revoked(self, revoked: object) -> None:
        """Nothing to do: a raw consumer commits as it goes."""

    async def on_partitions_assigned(self, assigned: object) -> None:
        """Note the time of a raw consumer's assignment."""
        self.assigned_at = time.perf_counter()

    def since_assigned(self) -> float:
        """Seconds from the last assignment to now."""
        if self.assigned_at is None:
            raise RunFailed("the consumer finished without an assignment")
        return time.perf_counter() - self.assigned_at


async def create_topic() -> str:
    """A new topic of `PARTITIONS` partitions."""
    name = f"gw-bench-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=BROKER)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def produce(topic: str, count: int, rate: float | None = None) -> float:
    """Produce `count` messages, at `rate` per second if given, each carrying its send time
    then; the messages per second produced."""
    producer = AIOKafkaProducer(bootstrap_servers=BROKER, linger_ms=0 if rate else 5)
    await producer.start()
    try:
        started = time.perf_counter()
        sent = []
        for n in range(count):
            if rate is not None:
                await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
            sent.append(await producer.send(topic, payload(n, sent=rate is not None)))
        await asyncio.gather(*sent)
        return count / (time.perf_counter() - started)
    finally:
        await producer.stop()


@asynccontextmanager
async def consumer_of(topic: str, clock: AssignmentClock) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer of a group of its own, reading `topic` from the beginning."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BROKER,
        group_id=f"gw-bench-{uuid.uuid4().hex[:12]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **CONSUMER_TIMINGS,
    )
    await consumer.start()
    consumer.subscribe([topic], listener=clock)
    try:
        yield consumer
    finally:
        await consumer.stop()


def rows_of(records: Iterable[ConsumerRecord[bytes, bytes]]) -> list[Row]:
    """The `(topic/partition/offset, value)` rows of records."""
    return [(f"{r.topic}/{r.partition}/{r.offset}", r.value) for r in records]


def following(fetched: Mapping[TopicPartition, Sequence[Any]]) -> dict[TopicPartition, int]:
    """The offsets to commit after a fetch."""
    return {tp: records[-1].offset + 1 for tp, records in fetched.items() if records}


async def raw_consume_rate(topic: str) -> float:
    """`getmany()` alone, until every message was read."""
    clock = AssignmentClock()
    async with consumer_of(topic, clock) as consumer, asyncio.timeout(RUN_TIMEOUT_S):
        taken = 0
        while taken < MESSAGES:
            fetched = await consumer.getmany(timeout_ms=1000)
            taken += sum(len(records) for records in fetched.values())
        return MESSAGES / clock.since_assigned()


async def durable_rate(topic: str, table: RawTable, max_records: int | None = None) -> float:
    """`getmany()` -> the fetch (at most `max_records`) in one transaction -> commit its
    offsets, until every message is stored."""
    clock = AssignmentClock()
    async with consumer_of(topic, clock) as consumer, asyncio.timeout(RUN_TIMEOUT_S):
        taken = 0
        while taken < MESSAGES:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=max_records)
            if not fetched:
                continue
            rows = rows_of(chain.from_iterable(fetched.values()))
            await table.write(rows)
            await consumer.commit(following(fetched))
            taken += len(rows)
        elapsed = clock.since_assigned()
    return checked_rate(MESSAGES, elapsed, await table.count(), "raw pipeline")


async def naive_rate(topic: str, table: RawTable) -> float:
    """One record -> one INSERT transaction -> one offset commit, for `NAIVE_MESSAGES`."""
    clock = AssignmentClock()
    async with consumer_of(topic, clock) as consumer, asyncio.timeout(RUN_TIMEOUT_S):
        for _ in range(NAIVE_MESSAGES):
            record = await consumer.getone()
            await table.write(rows_of([record]))
            tp = TopicPartition(record.topic, record.partition)
            await consumer.commit({tp: record.offset + 1})
        elapsed = clock.since_assigned()
    return checked_rate(NAIVE_MESSAGES, elapsed, await table.count(), "naive pipeline")


def checked_rate(count: int, elapsed: float, stored: int, what: str) -> float:
    """`count` per `elapsed` second; RunFailed unless `stored` is `count`."""
    check_stored(count, stored, what)
    return count / elapsed


def check_stored(count: int, stored: int, what: str) -> None:
    """RunFailed unless the pipeline stored one row (or job) per message."""
    if stored != count:
        raise RunFailed(f"{what}: {stored} stored for {count} messages")


async def raw_latency(figures: dict[str, float]) -> None:
    """The p50 and p99 milliseconds from send to `getmany()` of a bare consumer, at
    `LATENCY_RATE`: the broker's own floor under the gateway's latency."""
    topic = await create_topic()
    clock = AssignmentClock()
    latencies: list[float] = []
    async with consumer_of(topic, clock) as consumer, asyncio.timeout(RUN_TIMEOUT_S):
        while clock.assigned_at is None:
            await consumer.getmany(timeout_ms=100)
        producing = asyncio.create_task(produce(topic, LATENCY_MESSAGES, rate=LATENCY_RATE))
        while len(latencies) < LATENCY_MESSAGES:
            fetched = await consumer.getmany(timeout_ms=1000)
            received_ns = time.time_ns()
            for record in chain.from_iterable(fetched.values()):
                latencies.append((received_ns - json.loads(record.value)["sent_ns"]) / 1e6)
        await producing
    figures["raw_p50_ms"] = percentile(latencies, 50)
    figures["raw_p99_ms"] = percentile(latencies, 99)
    report("raw: send -> getmany() p50", figures["raw_p50_ms"], "ms")
    report("raw: send -> getmany() p99", figures["raw_p99_ms"], "ms")


@dataclass(frozen=True, slots=True)
class GatewayFigures:
    """The gateway's rate and its publish-to-committed-job latency."""

    per_s: float
    p50_ms: float
    p99_ms: float


async def gateway_figures(dialect: str, topic: str) -> GatewayFigures:
    """The gateway's rate over every message of `topic`, then its latency at `LATENCY_RATE` on a
    second topic of the trigger, empty until then."""
    clock = AssignmentClock()
    kafka_log = logging.getLogger("gateway.listeners.kafka")
    kafka_log.addHandler(clock)
    kafka_log.setLevel(logging.INFO)
    timed_topic = await create_topic()
    resource = ("kafka", {"brokers": [BROKER], "security": {"label": "PLAINTEXT"}})
    trigger = {
        "kafka_resource_path": RESOURCE_PATH,
        "topics": [topic, timed_topic],
        "group_id": f"gw-bench-{uuid.uuid4().hex[:12]}",
        "auto_offset_reset": "earliest",
    }
    try:
        async with running_gateway(
            dialect, "kafka", lambda store: listener_factory(store, GATEWAY_OPTIONS), resource,
            trigger,
        ) as run:  # fmt: skip
            await run.sink.wait_for(MESSAGES, f"gateway on {dialect}")
            if clock.assigned_at is None:
                raise RunFailed("the gateway's consumer finished without an assignment")
            per_s = MESSAGES / (run.sink.last_commit_at - clock.assigned_at)
            run.sink.measure_latency()
            await produce(timed_topic, LATENCY_MESSAGES, rate=LATENCY_RATE)
            await run.sink.wait_for(MESSAGES + LATENCY_MESSAGES, f"gateway on {dialect}")
            jobs = await run.jobs()
            latencies = run.sink.latencies_ms or [0.0]
    finally:
        kafka_log.removeHandler(clock)
        kafka_log.setLevel(logging.NOTSET)
    check_stored(MESSAGES + LATENCY_MESSAGES, jobs, f"gateway on {dialect}")
    return GatewayFigures(per_s, percentile(latencies, 50), percentile(latencies, 99))


async def run() -> dict[str, float]:
    """Every figure, in one round on one topic."""
    topic = await create_topic()
    figures: dict[str, float] = {"messages": MESSAGES}
    figures["produce_per_s"] = await produce(topic, MESSAGES)
    report(
        f"produce {MESSAGES} messages, {PARTITIONS} partitions", figures["produce_per_s"], "msg/s"
    )
    await measure("raw: getmany() alone", "raw_consume_per_s", raw_consume_rate(topic), figures)
    await raw_latency(figures)
    async with postgres_copy_table() as table:
        await measure(
            "raw: getmany() -> COPY (postgresql) -> commit offsets", "raw_pg_per_s",
            durable_rate(topic, table), figures,
        )  # fmt: skip
    async with postgres_copy_table() as table:
        await measure(
            f"raw, the gateway's batches: getmany(max_records={GATEWAY_OPTIONS.max_batch}) -> COPY",
            "raw_pg_gateway_batch_per_s", durable_rate(topic, table, GATEWAY_OPTIONS.max_batch),
            figures,
        )  # fmt: skip
    async with postgres_job_rows("kafka") as table:
        await measure(
            f"raw job rows: getmany(max_records={GATEWAY_OPTIONS.max_batch}) -> 3 COPYs -> commit",
            "raw_jobrows_pg_per_s", durable_rate(topic, table, GATEWAY_OPTIONS.max_batch),
            figures,
        )  # fmt: skip
    async with sqlite_insert_table() as table:
        await measure(
            "raw: getmany() -> multi-row INSERT (sqlite) -> commit offsets", "raw_sqlite_per_s",
            durable_rate(topic, table), figures,
        )  # fmt: skip
    async with postgres_row_table() as table:
        await measure(
            f"naive: per record INSERT + offset commit (first {NAIVE_MESSAGES})",
            "naive_pg_per_s", naive_rate(topic, table), figures,
        )  # fmt: skip
    for dialect in DIALECTS:
        record_gateway("kafka", dialect, await gateway_figures(dialect, topic), figures)
    report_ratios(figures)
    return figures


main = main_of(run)

if __name__ == "__main__":
    sys.exit(main())

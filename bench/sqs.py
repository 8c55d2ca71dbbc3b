"""The SQS benchmark: how fast the gateway turns queued SQS messages into committed jobs.

`MESSAGES` messages go through a queue of moto's SQS server (`GATEWAY_TEST_SQS`); the gateway's
lease supervisor consumes them with the SQS listener into jobs on PostgreSQL (executor off: the
jobs stay queued), each batch committed before it is deleted from the queue. The baseline, on
the same SQS server and the same PostgreSQL server, is the loop a person would write by hand:
aiobotocore receive (ten at a time) -> one multi-row insert into a plain table -> batch delete.

moto's receive scans the whole queue several times per call, so a queue holding 20k messages
would make each receive take seconds and measure nothing but that. A feeder therefore sends the
messages during the run, keeping about `BACKLOG` of them waiting, the same way for both loops.

Each run starts from a new queue and an empty database. The gateway and the baseline runs are
interleaved in `ROUNDS` rounds and each figure is the median of its rounds. The last line printed
is one JSON object with the figures and `pg_vs_raw`, the gateway's rate over the baseline's
(target >= 0.7).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import psycopg
from aiobotocore.session import get_session

from bench.common import (
    create_database,
    database_name,
    drop_databases,
    report,
    run_and_report,
    run_database_url,
)
from gateway.clock import SystemClock
from gateway.listeners.lease import Lease
from gateway.listeners.sql_lease_store import SqlLeaseStore
from gateway.listeners.sqs import listener_factory
from gateway.listeners.sqs_config import SqsOptions
from gateway.listeners.supervisor import LeaseSupervisor, LeaseTimings
from gateway.observability.alerts import StoreAlertSink
from gateway.scripts import ScriptDraft, save_script
from gateway.store import Json, Store, open_store
from gateway.store.migrations import migrate
from gateway.store.trigger_tables import COLUMN_DEFAULTS, TRIGGER_TABLES
from gateway.triggers.event import Event
from gateway.triggers.pipeline import TriggerJobSink
from gateway.workspaces import Identity, ensure_workspace

MESSAGES = 20_000
ROUNDS = 2
BACKLOG = 50
RUN_TIMEOUT_S = 600.0
"""A run that has not taken every message by then fails the benchmark."""

ENDPOINT = os.environ.get("GATEWAY_TEST_SQS", "http://127.0.0.1:25000")
REGION = "us-east-1"
WORKSPACE = "bench"
OWNER = Identity("bench", "bench@example.com")
SCRIPT_PATH = "f/bench/echo"
RESOURCE_PATH = "f/bench/aws"
RESOURCE = {
    "awsAccessKeyId": "bench",
    "awsSecretAccessKey": "bench",
    "region": REGION,
    "endpoint_url": ENDPOINT,
}
TIMINGS = LeaseTimings(
    claim_interval_s=1, ping_interval_s=1, stale_after_s=5, backoff_base_s=0.1, backoff_cap_s=1
)


class RunFailed(Exception):
    """A run did not take every message in time: the figures would measure something else."""


@asynccontextmanager
async def sqs_client() -> AsyncIterator[Any]:
    """An aiobotocore SQS client of the benchmark's server."""
    async with get_session().create_client(
        "sqs",
        region_name=REGION,
        endpoint_url=ENDPOINT,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    ) as client:
        yield client


@asynccontextmanager
async def fed_queue() -> AsyncIterator[str]:
    """A new queue, fed `MESSAGES` messages while the context runs; deleted afterwards.

    The feeder keeps about `BACKLOG` messages visible, sending ten at a time.
    """
    async with sqs_client() as client:
        response = await client.create_queue(QueueName=f"gw-bench-{uuid.uuid4().hex[:12]}")
        url: str = response["QueueUrl"]
        feeder = asyncio.create_task(_feed(client, url), name="bench-sqs-feeder")
        try:
            yield url
        finally:
            feeder.cancel()
            await asyncio.wait([feeder])
            await client.delete_queue(QueueUrl=url)


async def _feed(client: Any, url: str) -> None:
    sent = 0
    while sent < MESSAGES:
        response = await client.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        if int(response["Attributes"]["ApproximateNumberOfMessages"]) >= BACKLOG:
            await asyncio.sleep(0.005)
            continue
        entries = [
            {"Id": str(n), "MessageBody": f'{{"n": {sent + n}}}'}
            for n in range(min(10, MESSAGES - sent))
        ]
        await client.send_message_batch(QueueUrl=url, Entries=entries)
        sent += len(entries)


@asynccontextmanager
async def scratch_database(suffix: str) -> AsyncIterator[str]:
    """An empty PostgreSQL database named after the run's, dropped afterwards; its URL."""
    run_url = run_database_url()
    name = f"{database_name(run_url)}_{suffix}"
    url = await asyncio.to_thread(create_database, run_url, name)
    try:
        yield url
    finally:
        await asyncio.to_thread(drop_databases, run_url, name)


async def add_trigger(store: Store, queue_url: str) -> str:
    """The workspace, the script, the AWS resource and an SQS trigger of the queue; its path."""
    path = f"f/bench/sqs_{uuid.uuid4().hex[:8]}"
    values = {
        **{c: COLUMN_DEFAULTS.get(c) for c in TRIGGER_TABLES["sqs"].writable_columns},
        "path": path,
        "script_path": SCRIPT_PATH,
        "is_flow": False,
        "workspace_id": WORKSPACE,
        "edited_by": OWNER.username,
        "email": OWNER.email,
        "permissioned_as": OWNER.permissioned_as,
        "queue_url": queue_url,
        "aws_resource_path": RESOURCE_PATH,
    }
    values.pop("edited_at")
    draft = ScriptDraft(
        path=SCRIPT_PATH, content="def main(msg: str):\n    return msg\n", language="python3"
    )
    async with store.transaction() as tx:
        await ensure_workspace(tx, WORKSPACE, OWNER)
        await save_script(tx, WORKSPACE, draft, OWNER.username)
        await tx.execute(
            "upsert_resource",
            workspace_id=WORKSPACE,
            path=RESOURCE_PATH,
            value=Json(RESOURCE),
            description="",
            resource_type="aws",
            created_by=OWNER.username,
        )
        await tx.execute("upsert_sqs_trigger", **values)
    return path


class CountingSink:
    """The gateway's job sink, noting when `MESSAGES` events have been committed as jobs."""

    def __init__(self, inner: TriggerJobSink) -> None:
        self._inner = inner
        self.committed = 0
        self.done = asyncio.Event()

    async def submit(self, lease: Lease, events: Sequence[Event]) -> list[UUID]:
        """Submit through the gateway's sink, then count."""
        job_ids = await self._inner.submit(lease, events)
        self.committed += len(events)
        if self.committed >= MESSAGES:
            self.done.set()
        return job_ids


async def gateway_rate() -> float:
    """Messages per second the gateway commits as jobs (executor off)."""
    async with scratch_database("gateway") as url, fed_queue() as queue_url:
        store = await open_store(url)
        try:
            await migrate(store)
            path = await add_trigger(store, queue_url)
            sink = CountingSink(TriggerJobSink(store))
            supervisor = LeaseSupervisor(
                "bench",
                store=SqlLeaseStore(store),
                factories={"sqs": listener_factory(store, SqsOptions(wait_time_s=1))},
                sink=sink,
                alerts=StoreAlertSink(store),
                timings=TIMINGS,
                clock=SystemClock(),
            )
            started = time.perf_counter()
            await supervisor.start()
            try:
                async with asyncio.timeout(RUN_TIMEOUT_S):
                    await sink.done.wait()
            except TimeoutError:
                raise RunFailed(
                    f"gateway: {sink.committed} of {MESSAGES} after {RUN_TIMEOUT_S:.0f}s"
                ) from None
            finally:
                elapsed = time.perf_counter() - started
                await supervisor.stop(drain_timeout_s=5)
        finally:
            await store.close()
        jobs = await count_rows(url, "SELECT count(*) FROM v2_job WHERE trigger = %s", path)
    if jobs != MESSAGES:
        raise RunFailed(f"gateway: {jobs} jobs for {MESSAGES} messages")
    return MESSAGES / elapsed


async def count_rows(url: str, query: str, *params: Any) -> int:
    """The count a `SELECT count(*)` query returns."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(query, params)
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def raw_rate() -> float:
    """Messages per second of receive -> one multi-row insert -> batch delete."""
    async with (
        scratch_database("raw") as url,
        fed_queue() as queue_url,
        sqs_client() as client,
        await psycopg.AsyncConnection.connect(url, autocommit=True) as conn,
    ):
        await conn.execute("CREATE TABLE message (id text PRIMARY KEY, body text NOT NULL)")
        taken = 0
        started = time.perf_counter()
        deadline = started + RUN_TIMEOUT_S
        while taken < MESSAGES:
            if time.perf_counter() > deadline:
                raise RunFailed(f"raw loop: {taken} of {MESSAGES} after {RUN_TIMEOUT_S:.0f}s")
            response = await client.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            messages = response.get("Messages") or []
            if not messages:
                continue
            rows = ", ".join(["(%s, %s)"] * len(messages))
            values = [value for m in messages for value in (m["MessageId"], m["Body"])]
            await conn.execute(
                f"INSERT INTO message (id, body) VALUES {rows} ON CONFLICT (id) DO NOTHING",
                values,
            )
            await client.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(messages)
                ],
            )
            taken += len(messages)
        elapsed = time.perf_counter() - started
    return MESSAGES / elapsed


async def run() -> dict[str, float]:
    """Both rates in `ROUNDS` interleaved rounds; their medians and the ratio."""
    samples: dict[str, list[float]] = {"gateway_per_s": [], "raw_per_s": []}
    for round_number in range(1, ROUNDS + 1):
        print(f"-- round {round_number} of {ROUNDS}", flush=True)
        for key, label, take in (
            ("gateway_per_s", "gateway: SQS -> jobs on postgresql", gateway_rate),
            ("raw_per_s", "raw: receive -> multi-row insert -> delete", raw_rate),
        ):
            value = await take()
            samples[key].append(value)
            report(label, value, "msg/s")
    figures = {key: statistics.median(values) for key, values in samples.items()}
    figures["pg_vs_raw"] = figures["gateway_per_s"] / figures["raw_per_s"]
    figures["messages"] = MESSAGES
    print(f"-- medians of {ROUNDS} rounds", flush=True)
    report("gateway: SQS -> jobs on postgresql", figures["gateway_per_s"], "msg/s")
    report("raw: receive -> multi-row insert -> delete", figures["raw_per_s"], "msg/s")
    report("pg_vs_raw (target >= 0.7)", figures["pg_vs_raw"], "x")
    return figures


def main() -> int:
    """Run the benchmark; non-zero when a run did not take every message."""
    return run_and_report(run, (RunFailed,))


if __name__ == "__main__":
    sys.exit(main())

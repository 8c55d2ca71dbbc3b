"""Row changes to jobs, on a real cluster and both store dialects: the fenced job sink, the lease
store and, last, the lease supervisor with a crash between the jobs' commit and the confirmation.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import pytest

from gateway.clock import SystemClock
from gateway.executor.worker import Executor
from gateway.jobs.read import JobFilter, get_job, list_jobs
from gateway.listeners.lease import Lease
from gateway.listeners.memory import RecordingAlertSink
from gateway.listeners.postgres import listener_factory, stream_opener
from gateway.listeners.sql_lease_store import SqlLeaseStore
from gateway.listeners.supervisor import LeaseSupervisor, LeaseTimings
from gateway.settings import Settings
from gateway.store import Store
from gateway.triggers.event import Event
from gateway.triggers.pipeline import TriggerJobSink

from ..support import WS, add_scripts, completed, eventually
from .brokers import next_batch
from .cdc_cluster import (
    STATUS_INTERVAL_S,
    CdcSource,
    add_resource,
    add_trigger,
    cdc_source,
    listener_on,
    streaming,
)

pytestmark = pytest.mark.integration

ROW_SCRIPT = (
    "def main(transaction_type: str, schema_name: str, table_name: str,\n"
    "         old_row: dict, row: dict):\n"
    "    return {'type': transaction_type, 'id': row['id']}\n"
)
TIMINGS = LeaseTimings(
    claim_interval_s=0.5,
    ping_interval_s=0.2,
    stale_after_s=2.0,
    backoff_base_s=0.1,
    backoff_cap_s=1,
)


async def prepared(store: Store, source: CdcSource) -> Lease:
    """The script, the resource and a trigger on `source`, claimed by this instance."""
    await add_scripts(store, rows=ROW_SCRIPT)
    await add_resource(store)
    trigger = await add_trigger(store, source, "rows")
    [lease] = await SqlLeaseStore(store).claim_stale("postgres", "gw-cdc", 15.0)
    assert lease.trigger == trigger
    return lease


async def jobs_of(store: Store, lease: Lease) -> list[dict[str, object]]:
    """The jobs the trigger made."""
    return await list_jobs(store, WS, JobFilter(trigger=lease.trigger.path, per_page=100))


async def test_row_changes_become_jobs_and_a_replay_maps_to_the_same_jobs(store: Store) -> None:
    async with cdc_source() as source:
        lease = await prepared(store, source)
        sink = TriggerJobSink(store)
        async with streaming(listener_on(store, lease)) as stream:
            await source.run(
                "INSERT INTO {full} (id, note) VALUES (1, 'a'), (2, 'b')",
                "UPDATE {full} SET note = 'c' WHERE id = 1",
            )
            batch = await next_batch(stream)
            first = await sink.submit(lease, batch.events)
            # Gone before the ack: the server still owes this transaction.

        listener = listener_on(store, lease)
        async with streaming(listener) as stream:
            replayed = await next_batch(stream)
            again = await sink.submit(lease, replayed.events)
            await listener.ack(replayed)

    assert again == first
    assert len(set(first)) == 3
    jobs = await jobs_of(store, lease)
    assert sorted(UUID(str(job["id"])) for job in jobs) == sorted(first)
    job = await get_job(store, WS, first[2])
    assert job["args"]["transaction_type"] == "update"
    assert job["args"]["old_row"]["note"] == "a"
    assert job["args"]["row"]["note"] == "c"
    assert job["args"]["table_name"] == source.full
    assert job["trigger_kind"] == "postgres"


class CrashAfterCommit:
    """The job sink of a process that dies once right after committing, before confirming."""

    def __init__(self, sink: TriggerJobSink) -> None:
        self._sink = sink
        self.submitted: list[list[UUID]] = []

    async def submit(self, lease: Lease, events: Sequence[Event]) -> list[UUID]:
        job_ids = await self._sink.submit(lease, events)
        self.submitted.append(job_ids)
        if len(self.submitted) == 1:
            raise RuntimeError("the process died between the jobs' commit and the confirmation")
        return job_ids


async def test_a_crash_between_commit_and_confirmation_makes_no_job_twice(
    store: Store, settings: Settings
) -> None:
    async with cdc_source() as source:
        lease = await prepared(store, source)
        await SqlLeaseStore(store).release(lease)  # for the supervisor to claim
        sink = CrashAfterCommit(TriggerJobSink(store))
        supervisor = LeaseSupervisor(
            "gw-cdc",
            store=SqlLeaseStore(store),
            factories={"postgres": listener_factory(store, stream_opener(STATUS_INTERVAL_S))},
            sink=sink,
            alerts=RecordingAlertSink(),
            timings=TIMINGS,
            clock=SystemClock(),
        )
        executor = Executor(store, settings)
        await executor.start()
        await supervisor.start()
        try:
            await source.run("INSERT INTO {full} (id) VALUES (1), (2)")
            await source.run("INSERT INTO {plain} (id) VALUES (3)")
            written = await source.lsn()

            async def confirmed() -> bool:
                return await source.confirmed() >= written

            await eventually(confirmed, timeout_s=20)
            jobs = await jobs_of(store, lease)
            results = [(await completed(store, UUID(str(job["id"]))))["result"] for job in jobs]
        finally:
            await supervisor.stop(drain_timeout_s=1.0)
            await executor.stop(grace_s=1.0)

    assert sink.submitted[0] == sink.submitted[1]
    assert sorted(result["id"] for result in results) == [1, 2, 3]
    assert {result["type"] for result in results} == {"insert"}

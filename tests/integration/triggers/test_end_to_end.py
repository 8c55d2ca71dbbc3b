"""Source to completed job: the real supervisor, lease store, job sink and executor together."""

from __future__ import annotations

from uuid import UUID

from gateway.clock import SystemClock
from gateway.executor.worker import Executor
from gateway.jobs.read import JobFilter, list_jobs
from gateway.listeners.base import Listener
from gateway.listeners.lease import Lease
from gateway.listeners.memory import MemorySource, RecordingAlertSink
from gateway.listeners.sql_lease_store import SqlLeaseStore
from gateway.listeners.supervisor import LeaseSupervisor, LeaseTimings
from gateway.settings import Settings
from gateway.store import Store
from gateway.triggers.event import Event
from gateway.triggers.pipeline import TriggerJobSink

from ..support import WS, add_scripts, completed, eventually
from .support import add_trigger, frame, read_trigger

TIMINGS = LeaseTimings(
    claim_interval_s=0.5,
    ping_interval_s=0.2,
    stale_after_s=2.0,
    backoff_base_s=0.1,
    backoff_cap_s=1,
)


def frame_number(n: int) -> Event:
    """Frame `n` of the feed, with its own dedup key."""
    return frame(f"message {n}", f"frame-{n}")


async def test_published_messages_become_completed_jobs_exactly_once(
    store: Store, settings: Settings
) -> None:
    await add_scripts(store, echo="def main(msg: str):\n    return {'echo': msg}\n")
    trigger = await add_trigger(store, "feed")
    source = MemorySource(batch_size=3)

    def listen(lease: Lease) -> Listener:
        return source.listener()

    executor = Executor(store, settings)
    supervisor = LeaseSupervisor(
        "gw-e2e",
        store=SqlLeaseStore(store),
        factories={"websocket": listen},
        sink=TriggerJobSink(store),
        alerts=RecordingAlertSink(),
        timings=TIMINGS,
        clock=SystemClock(),
    )
    await executor.start()
    await supervisor.start()
    try:
        source.publish(*(frame_number(n) for n in range(4)))
        source.publish(frame_number(1))  # the source delivers message 1 again
        source.publish(*(frame_number(n) for n in range(4, 7)))

        async def all_acked() -> bool:
            return len(source.acked) == 8

        await eventually(all_acked)
        jobs = await list_jobs(store, WS, JobFilter(trigger=trigger.path, per_page=100))
        results = [(await completed(store, UUID(job["id"])))["result"] for job in jobs]
    finally:
        await supervisor.stop(drain_timeout_s=1.0)
        await executor.stop(grace_s=1.0)

    assert len(results) == 7
    assert sorted(result["echo"] for result in results) == [f"message {n}" for n in range(7)]
    assert (await read_trigger(store, trigger))["server_id"] is None

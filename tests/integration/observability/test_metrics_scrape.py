"""The metrics scrape, parsed as Prometheus parses it: counts match the jobs created, and the
scrape-time gauges read the queue, the leases and the sources."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import httpx
import pytest

from gateway.clock import SystemClock
from gateway.executor.worker import Executor
from gateway.jobs.read import JobFilter, list_jobs
from gateway.listeners.base import Listener
from gateway.listeners.lease import Lease, TriggerRef
from gateway.listeners.memory import MemorySource, RecordingAlertSink
from gateway.listeners.sql_lease_store import SqlLeaseStore
from gateway.listeners.supervisor import LeaseSupervisor, LeaseTimings
from gateway.observability.metrics import GatewayMetrics
from gateway.observability.source_lag import LagProbe, SourceLag
from gateway.runtime import Gateway
from gateway.settings import Settings
from gateway.store import Store
from gateway.triggers.pipeline import TriggerJobSink

from ..support import WS, completed, eventually, job_of, submit
from ..triggers.support import claim, frame
from .support import put_trigger, sample, scrape

pytestmark = pytest.mark.integration

TIMINGS = LeaseTimings(
    claim_interval_s=0.5,
    ping_interval_s=0.2,
    stale_after_s=2.0,
    backoff_base_s=0.1,
    backoff_cap_s=1,
)
FEED_URL = "ws://127.0.0.1:9/feed"


def labels_of(trigger: TriggerRef) -> dict[str, str]:
    return {"kind": trigger.kind, "workspace": trigger.workspace_id, "trigger": trigger.path}


@pytest.mark.usefixtures("scripts")
async def test_counts_match_the_jobs_created(store: Store, settings: Settings) -> None:
    orders = await put_trigger(
        store, "websocket", "orders", url=FEED_URL, filters=[{"key": "type", "value": "order"}]
    )
    lost = await put_trigger(store, "websocket", "lost", url=FEED_URL, script="nowhere")
    sources = {orders: MemorySource(), lost: MemorySource()}

    def listen(lease: Lease) -> Listener:
        return sources[lease.trigger].listener()

    metrics = GatewayMetrics("gw-metrics")
    executor = Executor(store, settings, metrics=metrics)
    supervisor = LeaseSupervisor(
        "gw-metrics",
        store=SqlLeaseStore(store),
        factories={"websocket": listen},
        sink=TriggerJobSink(store, metrics=metrics),
        alerts=RecordingAlertSink(),
        timings=TIMINGS,
        clock=SystemClock(),
    )
    await executor.start()
    await supervisor.start()
    try:
        sources[orders].publish(
            frame('{"type": "order", "n": 1}', "m-1"),
            frame('{"type": "refund"}', "m-2"),
            frame('{"type": "order", "n": 1}', "m-1"),  # delivered again
            frame('{"type": "order", "n": 3}', "m-3"),
        )
        sources[lost].publish(frame("for a missing script", "m-1"))

        async def all_acked() -> bool:
            return len(sources[orders].acked) == 4 and len(sources[lost].acked) == 1

        await eventually(all_acked)
        jobs = await list_jobs(store, WS, JobFilter(trigger=orders.path, per_page=100))
        for job in jobs:
            await completed(store, UUID(job["id"]))

        async def all_counted() -> bool:
            found = scrape(metrics.exposition().decode())
            return sample(found, "gateway_jobs_finished_total", status="success") == len(jobs)

        await eventually(all_counted)
    finally:
        await supervisor.stop(drain_timeout_s=1.0)
        await executor.stop(grace_s=1.0)

    found = scrape(metrics.exposition().decode())
    assert len(jobs) == 2
    assert {
        outcome: sample(found, f"gateway_events_{outcome}_total", **labels_of(orders))
        for outcome in ("received", "filtered", "enqueued", "deduplicated", "quarantined")
    } == {"received": 4, "filtered": 1, "enqueued": 2, "deduplicated": 1, "quarantined": 0}
    assert sample(found, "gateway_events_received_total", **labels_of(lost)) == 1
    assert sample(found, "gateway_events_quarantined_total", **labels_of(lost)) == 1
    assert sample(found, "gateway_events_enqueued_total", **labels_of(lost)) == 0
    assert sample(found, "gateway_job_duration_seconds_count", status="success") == 2
    assert sample(found, "gateway_event_to_job_latency_seconds_count", kind="websocket") == 2


async def test_the_endpoint_serves_the_queue_depth_and_the_leases_of_this_instance(
    gateway: Gateway, api: httpx.AsyncClient
) -> None:
    await submit(gateway.store, job_of("echo"), job_of("echo", delay_s=3600))

    response = await api.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = scrape(response.text)
    assert sample(found, "gateway_queue_depth", state="due") == 1
    assert sample(found, "gateway_queue_depth", state="scheduled") == 1
    assert sample(found, "gateway_queue_depth", state="running") == 0
    held = {"server_id": gateway.instance_name, "kind": "kafka"}
    assert sample(found, "gateway_leases_held", **held) == 0


@pytest.mark.usefixtures("scripts")
async def test_a_refresh_reads_whether_held_listeners_are_connected_and_their_lag(
    store: Store,
) -> None:
    orders = await put_trigger(
        store, "kafka", "orders", kafka_resource_path="u/alice/kafka", topics=["o"], group_id="g"
    )
    feed = await put_trigger(store, "websocket", "feed", url=FEED_URL)
    leases = SqlLeaseStore(store)
    await leases.ping(await claim(store, orders, "gw-a"), None)
    await leases.ping(await claim(store, feed, "gw-a"), "cannot connect")

    async def seven(store: Store, trigger: TriggerRef, row: Mapping[str, Any]) -> SourceLag:
        return SourceLag("messages", 7)

    metrics = GatewayMetrics("gw-a")
    probe = LagProbe(store, readers={"kafka": seven})
    await metrics.refresh(store, {orders, feed}, probe)

    found = scrape(metrics.exposition().decode())
    assert sample(found, "gateway_listener_connected", **labels_of(orders)) == 1
    assert sample(found, "gateway_listener_connected", **labels_of(feed)) == 0
    assert sample(found, "gateway_source_lag_messages", **labels_of(orders)) == 7
    assert sample(found, "gateway_leases_held", server_id="gw-a", kind="websocket") == 1

    await metrics.refresh(store, set(), probe)
    found = scrape(metrics.exposition().decode())
    assert sample(found, "gateway_listener_connected", **labels_of(orders)) is None
    assert sample(found, "gateway_source_lag_messages", **labels_of(orders)) is None

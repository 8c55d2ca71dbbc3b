"""The Prometheus metrics of one gateway instance, in a registry of its own (never the global one).

Counted where things happen: the job sink calls `batch_submitted` after each committed batch, the
executor `job_started` when it claims a job and `job_finished` when the job ends. Read when
scraped (`refresh`): the queue's depth, the leases this instance holds, whether their listeners
are connected, and their source lag. Names follow Prometheus's conventions: counters end in
`_total`, durations are in seconds, sizes in bytes.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gateway.listeners.lease import TriggerRef
from gateway.observability.source_lag import LagProbe, SourceLag
from gateway.observability.trigger_health import HeldLease, read_held_leases
from gateway.store import Store, fetch_one
from gateway.store.trigger_tables import LEASED_KINDS

logger = logging.getLogger(__name__)

TRIGGER_LABELS: Final = ("kind", "workspace", "trigger")
JOB_DURATION_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
LATENCY_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
QUEUE_STATES: Final = ("due", "scheduled", "running")


class GatewayMetrics:
    """Every metric of one instance (`server_id`), and the exposition of them."""

    def __init__(self, server_id: str) -> None:
        self.server_id = server_id
        self.registry = CollectorRegistry()
        registry = self.registry
        self.events_received = Counter(
            "gateway_events_received",
            "Events a listener handed to the job sink.",
            TRIGGER_LABELS,
            registry=registry,
        )
        self.events_filtered = Counter(
            "gateway_events_filtered",
            "Events the trigger's filters skipped.",
            TRIGGER_LABELS,
            registry=registry,
        )
        self.events_enqueued = Counter(
            "gateway_events_enqueued",
            "Events that became new jobs.",
            TRIGGER_LABELS,
            registry=registry,
        )
        self.events_deduplicated = Counter(
            "gateway_events_deduplicated",
            "Events delivered again, answered with the job they became the first time.",
            TRIGGER_LABELS,
            registry=registry,
        )
        self.events_quarantined = Counter(
            "gateway_events_quarantined",
            "Events that could not become jobs.",
            TRIGGER_LABELS,
            registry=registry,
        )
        self.requests_rate_limited = Counter(
            "gateway_requests_rate_limited",
            "HTTP requests refused with 429 by a rate limit, by scope (route, token).",
            ("scope",),
            registry=registry,
        )
        self.jobs_finished = Counter(
            "gateway_jobs_finished",
            "Jobs this instance's executor ran to an end, by status.",
            ("status",),
            registry=registry,
        )
        self.job_duration = Histogram(
            "gateway_job_duration_seconds",
            "How long jobs ran, by status.",
            ("status",),
            buckets=JOB_DURATION_BUCKETS,
            registry=registry,
        )
        self.event_to_job_latency = Histogram(
            "gateway_event_to_job_latency_seconds",
            "From a triggered job being due (its event enqueued, or its retry delay over) to an "
            "executor starting it, by trigger kind.",
            ("kind",),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "gateway_queue_depth",
            "Jobs in the queue: due, scheduled for later, running.",
            ("state",),
            registry=registry,
        )
        self.leases_held = Gauge(
            "gateway_leases_held",
            "Triggers this instance holds and consumes, by kind.",
            ("server_id", "kind"),
            registry=registry,
        )
        self.listener_connected = Gauge(
            "gateway_listener_connected",
            "1 while the listener of a trigger this instance holds is connected, else 0.",
            TRIGGER_LABELS,
            registry=registry,
        )
        self.source_lag = {
            unit: Gauge(
                f"gateway_source_lag_{unit}",
                f"How far behind its source a held trigger is, in {unit} (absent when unknown).",
                TRIGGER_LABELS,
                registry=registry,
            )
            for unit in ("messages", "bytes")
        }

    def batch_submitted(
        self,
        trigger: TriggerRef,
        *,
        received: int,
        filtered: int,
        enqueued: int,
        deduplicated: int,
        quarantined: int,
    ) -> None:
        """Count what became of a batch of events the job sink committed."""
        labels = _trigger_labels(trigger)
        self.events_received.labels(*labels).inc(received)
        self.events_filtered.labels(*labels).inc(filtered)
        self.events_enqueued.labels(*labels).inc(enqueued)
        self.events_deduplicated.labels(*labels).inc(deduplicated)
        self.events_quarantined.labels(*labels).inc(quarantined)

    def job_started(
        self, trigger_kind: str | None, scheduled_for: datetime, started_at: datetime
    ) -> None:
        """Observe how long a triggered job waited between being due and starting."""
        if trigger_kind is not None:
            waited_s = max((started_at - scheduled_for).total_seconds(), 0.0)
            self.event_to_job_latency.labels(trigger_kind).observe(waited_s)

    def job_finished(self, status: str, duration_s: float) -> None:
        """Count a job that ended with `status` after running `duration_s`."""
        self.jobs_finished.labels(status).inc()
        self.job_duration.labels(status).observe(duration_s)

    async def refresh(
        self, store: Store, held: Collection[TriggerRef], lags: LagProbe | None
    ) -> None:
        """Read what is measured when scraped; a part that cannot be read is left out."""
        queue: Mapping[str, Any] | None = None
        leases: Mapping[TriggerRef, HeldLease] = {}
        source_lags: Mapping[TriggerRef, SourceLag] = {}
        try:
            queue = await fetch_one(store, "count_queue_jobs")
            leases = await read_held_leases(store, self.server_id)
            if lags is not None:
                source_lags = await lags.lags(held)
        except Exception as exc:
            logger.warning(
                "metrics: cannot read the queue, the leases or the source lag: %s",
                exc,
                extra={"action": "metrics_refresh_failed"},
            )
        # Set every gauge without awaiting in between, so that a scrape sees one consistent view.
        self._set_queue(queue)
        self._set_leases(held, leases)
        self._set_lags(source_lags)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (`prometheus_client.CONTENT_TYPE_LATEST`)."""
        return generate_latest(self.registry)

    def _set_queue(self, queue: Mapping[str, Any] | None) -> None:
        self.queue_depth.clear()
        if queue is not None:
            for state in QUEUE_STATES:
                self.queue_depth.labels(state).set(queue[state] or 0)

    def _set_leases(
        self, held: Collection[TriggerRef], leases: Mapping[TriggerRef, HeldLease]
    ) -> None:
        per_kind = Tally(trigger.kind for trigger in held)
        for kind in LEASED_KINDS:
            self.leases_held.labels(self.server_id, kind).set(per_kind[kind])
        self.listener_connected.clear()
        for trigger in held:
            lease = leases.get(trigger)
            if lease is not None:  # else the row no longer names us: the runner is stopping
                connected = 1 if lease.error is None else 0
                self.listener_connected.labels(*_trigger_labels(trigger)).set(connected)

    def _set_lags(self, lags: Mapping[TriggerRef, SourceLag]) -> None:
        for gauge in self.source_lag.values():
            gauge.clear()
        for trigger, lag in lags.items():
            if lag.value is not None and lag.unit in self.source_lag:
                self.source_lag[lag.unit].labels(*_trigger_labels(trigger)).set(lag.value)


def _trigger_labels(trigger: TriggerRef) -> tuple[str, str, str]:
    return trigger.kind, trigger.workspace_id, trigger.path

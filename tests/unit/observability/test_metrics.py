"""The metrics one instance counts, as a Prometheus server parses them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families
from pytest import approx

from gateway.listeners.lease import TriggerRef
from gateway.observability.metrics import GatewayMetrics

ORDERS = TriggerRef("kafka", "ws", "u/alice/orders")


def samples(metrics: GatewayMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the scrape, by name and labels, as the Prometheus parser reads it."""
    text = metrics.exposition().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: GatewayMetrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


def test_a_batch_counts_every_outcome_of_its_events_per_trigger() -> None:
    metrics = GatewayMetrics("gw-a")
    metrics.batch_submitted(
        ORDERS, received=10, filtered=2, enqueued=5, deduplicated=2, quarantined=1
    )
    metrics.batch_submitted(
        ORDERS, received=1, filtered=0, enqueued=1, deduplicated=0, quarantined=0
    )
    labels = {"kind": "kafka", "workspace": "ws", "trigger": "u/alice/orders"}
    assert value(metrics, "gateway_events_received_total", **labels) == 11
    assert value(metrics, "gateway_events_filtered_total", **labels) == 2
    assert value(metrics, "gateway_events_enqueued_total", **labels) == 6
    assert value(metrics, "gateway_events_deduplicated_total", **labels) == 2
    assert value(metrics, "gateway_events_quarantined_total", **labels) == 1


def test_finished_jobs_are_counted_by_status_with_their_durations() -> None:
    metrics = GatewayMetrics("gw-a")
    metrics.job_finished("success", 0.2)
    metrics.job_finished("success", 3.0)
    metrics.job_finished("failure", 0.01)
    assert value(metrics, "gateway_jobs_finished_total", status="success") == 2
    assert value(metrics, "gateway_jobs_finished_total", status="failure") == 1
    assert value(metrics, "gateway_job_duration_seconds_count", status="success") == 2
    assert value(metrics, "gateway_job_duration_seconds_sum", status="success") == approx(3.2)
    assert value(metrics, "gateway_job_duration_seconds_bucket", status="success", le="0.25") == 1


def test_the_wait_to_start_is_observed_for_triggered_jobs_only() -> None:
    metrics = GatewayMetrics("gw-a")
    due = datetime(2024, 5, 1, tzinfo=UTC)
    metrics.job_started("mqtt", due, due + timedelta(seconds=0.3))
    metrics.job_started(None, due, due + timedelta(seconds=9))
    assert value(metrics, "gateway_event_to_job_latency_seconds_count", kind="mqtt") == 1
    assert value(metrics, "gateway_event_to_job_latency_seconds_sum", kind="mqtt") == approx(0.3)
    assert not [labels for name, labels in samples(metrics) if ("kind", "None") in labels]


def test_each_instance_has_a_registry_of_its_own() -> None:
    first, second = GatewayMetrics("gw-a"), GatewayMetrics("gw-b")
    first.job_finished("success", 1.0)
    assert value(first, "gateway_jobs_finished_total", status="success") == 1
    assert value(second, "gateway_jobs_finished_total", status="success") is None

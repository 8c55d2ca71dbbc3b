"""A running gateway whose MQTT broker (a mosquitto of the test's own) stops and comes back: the
status API, the CLI, the metrics and readiness follow it, on both dialects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.http_routes.api.tokens import issue_token
from gateway.jobs.read import JobFilter, list_jobs
from gateway.listeners.lease import TriggerRef
from gateway.runtime import Gateway
from gateway.settings import Settings

from ..listeners.brokers import BrokerProcess, mqtt_publish, own_mosquitto
from ..support import OWNER, WS, add_scripts, eventually
from .support import put_resource, put_trigger, run_command, sample, scrape

pytestmark = pytest.mark.integration

PAYLOAD_LENGTH = (
    "import base64\n\ndef main(payload: str):\n    return len(base64.b64decode(payload))\n"
)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A mosquitto on a free port."""
    with own_mosquitto(tmp_path / "mosquitto") as started:
        yield started


@pytest.fixture
def fast(settings: Settings) -> Settings:
    """Lease and reconnect timings short enough for a test to watch them."""
    return settings.model_copy(
        update={
            "lease_claim_interval_s": 0.5,
            "lease_ping_interval_s": 0.3,
            "lease_stale_after_s": 3.0,
            "listener_backoff_base_s": 0.1,
            "listener_backoff_cap_s": 0.5,
        }
    )


@pytest.fixture
async def running(fast: Settings) -> AsyncIterator[Gateway]:
    """A gateway serving HTTP, running jobs and listening."""
    async with Gateway.running(fast) as gateway:
        yield gateway


@pytest.fixture
async def http(running: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the running gateway, as alice, with a script that counts bytes."""
    await add_scripts(running.store, length=PAYLOAD_LENGTH)
    async with running.store.transaction() as tx:
        token = await issue_token(tx, OWNER, WS, label="test")
    async with httpx.AsyncClient(
        base_url=running.settings.local_url(running.http_port),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as client:
        yield client


async def mqtt_trigger(gateway: Gateway, broker: BrokerProcess) -> TriggerRef:
    """An MQTT trigger on topic `orders` of the test's broker, on the script that counts bytes."""
    await put_resource(
        gateway.store, "u/alice/mqtt", "mqtt", {"broker": "127.0.0.1", "port": broker.port}
    )
    return await put_trigger(
        gateway.store,
        "mqtt",
        "orders",
        script="length",
        mqtt_resource_path="u/alice/mqtt",
        subscribe_topics=[{"topic": "orders", "qos": "qos1"}],
        client_version="v5",
    )


async def status_of(http: httpx.AsyncClient, trigger: TriggerRef) -> dict[str, Any]:
    """The trigger's status as the API answers it."""
    response = await http.get(f"/api/w/{WS}/triggers/status?kind=mqtt")
    assert response.status_code == 200, response.text
    (found,) = [status for status in response.json() if status["path"] == trigger.path]
    return found


def in_state(http: httpx.AsyncClient, trigger: TriggerRef, state: str) -> Any:
    """A predicate for `eventually`: the trigger's status once it is in `state`."""

    async def check() -> dict[str, Any] | None:
        found = await status_of(http, trigger)
        return found if found["state"] == state else None

    return check


async def metrics_of(
    http: httpx.AsyncClient,
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The gateway's scrape, parsed as Prometheus parses it."""
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return scrape(response.text)


async def test_a_stopped_broker_turns_its_trigger_to_error_and_back_to_healthy(
    running: Gateway,
    http: httpx.AsyncClient,
    broker: BrokerProcess,
    fast: Settings,
) -> None:
    trigger = await mqtt_trigger(running, broker)
    labels = {"kind": "mqtt", "workspace": WS, "trigger": trigger.path}
    healthy = await eventually(in_state(http, trigger, "healthy"))
    assert healthy["server_id"] == running.instance_name

    for payload in (b"first", b"second!"):
        await asyncio.to_thread(mqtt_publish, ("127.0.0.1", broker.port), "orders", payload)

    async def two_events() -> bool:
        return (await status_of(http, trigger))["events_last_minute"] == 2

    await eventually(two_events)
    jobs = await list_jobs(running.store, WS, JobFilter(trigger=trigger.path, per_page=100))
    metrics = await metrics_of(http)
    assert sample(metrics, "gateway_events_received_total", **labels) == 2
    assert sample(metrics, "gateway_events_enqueued_total", **labels) == len(jobs) == 2
    assert sample(metrics, "gateway_listener_connected", **labels) == 1
    leases = {"server_id": running.instance_name, "kind": "mqtt"}
    assert sample(metrics, "gateway_leases_held", **leases) == 1

    broker.stop()
    failed = await eventually(in_state(http, trigger, "error"))
    assert failed["error"]
    assert sample(await metrics_of(http), "gateway_listener_connected", **labels) == 0

    broker.start()
    back = await eventually(in_state(http, trigger, "healthy"))
    assert back["error"] is None
    assert sample(await metrics_of(http), "gateway_listener_connected", **labels) == 1

    ready = await http.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert {name: check["ok"] for name, check in ready.json()["checks"].items()} == {
        "store": True,
        "executor": True,
        "leases": True,
    }
    printed = await run_command(
        fast, "triggers", "status", "--json", "--no-lag", "--kind", "mqtt", "-w", WS
    )
    (shown,) = json.loads(printed)
    assert (shown["path"], shown["state"], shown["server_id"]) == (
        trigger.path,
        "healthy",
        running.instance_name,
    )

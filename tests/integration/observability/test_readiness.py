"""`/health/ready` on both dialects: the store, the executor and the freshness of the leases this
instance consumes, each reported; 503 when one fails. The instance is a stand-in whose executor
state and consumed triggers the test sets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from gateway.http_routes import health
from gateway.listeners.lease import TriggerRef
from gateway.listeners.sql_lease_store import SqlLeaseStore
from gateway.observability.metrics import GatewayMetrics
from gateway.observability.source_lag import LagProbe
from gateway.settings import Settings
from gateway.store import Store

from ..triggers.support import age_leases, claim, set_server_id
from .support import put_trigger

pytestmark = pytest.mark.integration
NAME = "gw-ready"


@dataclass
class ExecutorStandIn:
    state: str = "running"
    sandbox: str = "jobs run as the unprivileged user nobody (uid 65534)"


@dataclass
class ListenersStandIn:
    consumed: set[TriggerRef] = field(default_factory=set)

    def running(self) -> frozenset[TriggerRef]:
        return frozenset(self.consumed)


@dataclass
class InstanceStandIn:
    """What the health endpoints read from a gateway."""

    settings: Settings
    store: Store
    instance_name: str = NAME
    executor: ExecutorStandIn = field(default_factory=ExecutorStandIn)
    listeners: ListenersStandIn = field(default_factory=ListenersStandIn)
    metrics: GatewayMetrics = field(default_factory=lambda: GatewayMetrics(NAME))
    lags: LagProbe = field(init=False)

    def __post_init__(self) -> None:
        self.lags = LagProbe(self.store)


@pytest.fixture
def instance(store: Store, settings: Settings) -> InstanceStandIn:
    return InstanceStandIn(settings, store)


@pytest.fixture
async def client(instance: InstanceStandIn) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=health.routes)
    app.state.gateway = instance
    async with httpx.AsyncClient(
        base_url="http://gateway.test", transport=httpx.ASGITransport(app=app)
    ) as http:
        yield http


async def readiness(client: httpx.AsyncClient) -> tuple[int, dict[str, bool], dict[str, Any]]:
    """The status code, each check's verdict, and the whole answer."""
    response = await client.get("/health/ready")
    answer = response.json()
    return response.status_code, {k: v["ok"] for k, v in answer["checks"].items()}, answer


@pytest.mark.usefixtures("scripts")
async def test_ready_while_every_consumed_lease_is_renewed_in_time(
    instance: InstanceStandIn, client: httpx.AsyncClient
) -> None:
    feed = await put_trigger(instance.store, "websocket", "feed", url="ws://127.0.0.1:9/")
    lease = await claim(instance.store, feed, NAME)
    instance.listeners.consumed.add(feed)

    code, checks, answer = await readiness(client)
    assert (code, checks) == (200, {"store": True, "executor": True, "leases": True})
    assert answer["status"] == "ready"
    assert answer["instance"] == NAME
    assert answer["checks"]["executor"]["detail"] == f"running; {ExecutorStandIn.sandbox}"

    await age_leases(instance.store, "websocket", 60)
    code, checks, answer = await readiness(client)
    assert (code, checks["leases"]) == (503, False)
    assert answer["status"] == "unavailable"
    assert feed.path in answer["checks"]["leases"]["detail"]

    await SqlLeaseStore(instance.store).ping(lease, None)
    assert (await readiness(client))[0] == 200


@pytest.mark.usefixtures("scripts")
async def test_a_lease_another_instance_took_is_not_ours_to_renew(
    instance: InstanceStandIn, client: httpx.AsyncClient
) -> None:
    feed = await put_trigger(instance.store, "websocket", "feed", url="ws://127.0.0.1:9/")
    await claim(instance.store, feed, NAME)
    instance.listeners.consumed.add(feed)
    await age_leases(instance.store, "websocket", 60)
    await set_server_id(instance.store, feed, "gw-other")

    assert (await readiness(client))[0] == 200


async def test_an_executor_whose_loop_ended_is_not_ready_and_one_not_run_here_is(
    instance: InstanceStandIn, client: httpx.AsyncClient
) -> None:
    instance.executor.state = "failed"
    code, checks, _ = await readiness(client)
    assert (code, checks["executor"]) == (503, False)

    instance.executor.state = "stopped"
    code, _, answer = await readiness(client)
    assert code == 200
    assert answer["checks"]["executor"]["detail"] == "not run by this instance"


async def test_a_store_that_does_not_answer_fails_the_store_and_the_leases(
    instance: InstanceStandIn, client: httpx.AsyncClient
) -> None:
    await instance.store.close()

    code, checks, _ = await readiness(client)

    assert (code, checks) == (503, {"store": False, "executor": True, "leases": False})
    assert (await client.get("/health/live")).json() == {"status": "live", "instance": NAME}

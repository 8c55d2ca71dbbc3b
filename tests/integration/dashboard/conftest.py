"""The dashboard under test: workspace `test` with a trigger in every health state, jobs of
those triggers, and a quarantined Kafka event; the dashboard in process or on a running gateway.

Listeners do not run: they would claim the Kafka triggers and overwrite the lease states the
tests write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from uuid import UUID

import httpx
import pytest

from gateway.http_routes.api.tokens import issue_token
from gateway.jobs.retry import RetryPolicy
from gateway.listeners.lease import CONNECTING, TriggerRef
from gateway.runtime import Gateway
from gateway.settings import Settings
from gateway.store import Store
from gateway.triggers.event import Event
from gateway.triggers.quarantine import quarantine_event
from gateway.workspaces import Identity

from ..support import OWNER, WS, add_scripts, job_of, submit

HELLO = "def main(name: str = 'world'):\n    return {'hello': name}\n"
FAIL = (
    "def main(**kwargs):\n"
    "    print('charging card 4242: declined <by bank>')\n"
    "    raise RuntimeError('payment refused')\n"
)
LOG_LINE = "charging card 4242: declined <by bank>"
BOB = Identity("bob", "bob@example.com")
HOLDER = "gw-a-1f2e3d"
CLAIM_INTERVAL_S = 0.5
TRIGGER_ERROR = '<img src=x onerror="document.title=1">broker down'

EXPECTED_HEALTH = {
    "u/alice/healthy": "green",
    "u/alice/connecting": "yellow",
    "u/alice/parked": "yellow",
    "u/alice/broken": "red",
    "u/alice/orphan": "red",
    "u/alice/off": "grey",
    "f/t/mail": "green",
}
"""Each seeded trigger and the colour the dashboard must give it."""


@dataclass(frozen=True, slots=True)
class Seeded:
    """What the seed wrote: tokens, the quarantined event, the jobs that fail."""

    admin_token: str
    viewer_token: str
    quarantined_id: int
    failing_job: UUID
    retried_job: UUID


def dashboard_settings(settings: Settings) -> Settings:
    """The test settings with a short claim interval, so an unclaimed trigger turns red soon."""
    return settings.model_copy(update={"lease_claim_interval_s": CLAIM_INTERVAL_S})


async def seed(gateway: Gateway) -> Seeded:
    """Write the workspace, its triggers (through the API), their lease states, jobs and an
    event in the quarantine."""
    store = gateway.store
    await add_scripts(store, hello=HELLO, fail=FAIL)
    async with store.transaction() as tx:
        admin_token = await issue_token(tx, OWNER, WS, label="dashboard test")
        await tx.execute(
            "upsert_user",
            workspace_id=WS,
            username=BOB.username,
            email=BOB.email,
            is_admin=False,
            role="Developer",
        )
        viewer_token = await issue_token(tx, BOB, WS, label="dashboard test")
    await _create_triggers(gateway, admin_token)
    await _write_lease_states(store)
    # An unclaimed trigger is only "unheld" once the claim interval has passed since its edit.
    await asyncio.sleep(CLAIM_INTERVAL_S + 0.2)
    events = [job_of("hello", trigger_kind="kafka", trigger="u/alice/healthy")] * 3
    await submit(store, *events)
    failing, retried = await submit(
        store,
        job_of("fail", trigger_kind="kafka", trigger="u/alice/broken"),
        job_of(
            "fail",
            trigger_kind="kafka",
            trigger="u/alice/broken",
            retry=RetryPolicy.parse({"constant": {"attempts": 1, "seconds": 1}}),
        ),
    )
    trigger = TriggerRef("kafka", WS, "u/alice/healthy")
    event = Event("kafka", b'{"order": 7}', {"topic": "orders"}, "orders/0/7", b'{"order": 7}')
    async with store.transaction() as tx:
        quarantined = await quarantine_event(tx, trigger, event, "script f/t/gone not found")
    assert quarantined is not None
    return Seeded(admin_token, viewer_token, quarantined, failing, retried)


async def _create_triggers(gateway: Gateway, token: str) -> None:
    kafka = {
        "script_path": "f/t/hello",
        "is_flow": False,
        "kafka_resource_path": "u/alice/kafka",
        "topics": ["orders"],
        "group_id": "g1",
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app),
        base_url=f"http://gateway.test/api/w/{WS}",
        headers={"Authorization": f"Bearer {token}"},
    ) as api:
        created = await api.post(
            "/resources/create",
            json={"path": "u/alice/kafka", "resource_type": "kafka", "value": {"brokers": ["b:1"]}},
        )
        assert created.status_code in (200, 201), created.text
        for path in ("healthy", "connecting", "broken", "orphan"):
            await _created(api, "kafka", {**kafka, "path": f"u/alice/{path}"})
        await _created(api, "kafka", {**kafka, "path": "u/alice/parked", "mode": "suspended"})
        await _created(api, "kafka", {**kafka, "path": "u/alice/off", "mode": "disabled"})
        await _created(
            api,
            "email",
            {"path": "f/t/mail", "script_path": "f/t/hello", "is_flow": False, "local_part": "in"},
        )


async def _created(api: httpx.AsyncClient, kind: str, body: dict[str, object]) -> None:
    response = await api.post(f"/{kind}_triggers/create", json=body)
    assert response.status_code == 201, response.text


async def _write_lease_states(store: Store) -> None:
    """Claim the held triggers as an instance would, each with the status its listener reports."""
    statuses = {
        "u/alice/healthy": None,
        "u/alice/connecting": CONNECTING,
        "u/alice/parked": None,
        "u/alice/broken": TRIGGER_ERROR,
    }
    async with store.transaction() as tx:
        for path, status in statuses.items():
            claimed = await tx.fetch_one(
                "claim_kafka_trigger",
                workspace_id=WS,
                path=path,
                server_id=HOLDER,
                status=status,
                stale_after_s=15.0,
            )
            assert claimed is not None, path


@pytest.fixture
async def asgi_gateway(store: Store, settings: Settings) -> AsyncIterator[tuple[Gateway, Seeded]]:
    """A gateway that is not started (no executor, no socket), with the dashboard, seeded."""
    gateway = Gateway(dashboard_settings(settings), store)
    yield gateway, await seed(gateway)


@pytest.fixture
async def dashboard_client(
    asgi_gateway: tuple[Gateway, Seeded],
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the in-process gateway, with no token."""
    gateway, _ = asgi_gateway
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app), base_url="http://gateway.test"
    ) as client:
        yield client

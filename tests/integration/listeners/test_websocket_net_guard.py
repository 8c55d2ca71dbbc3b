"""The network guard on WebSocket triggers: the address a name resolves to is checked at connect
time (the refusal recorded in the trigger's row), against a real server on loopback."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from gateway.clock import SystemClock
from gateway.executor.worker import Executor
from gateway.listeners.lease import TriggerRef
from gateway.listeners.memory import RecordingAlertSink
from gateway.listeners.sql_lease_store import SqlLeaseStore
from gateway.listeners.supervisor import LeaseSupervisor
from gateway.listeners.websocket import WebsocketOptions, listener_factory
from gateway.net_guard import HostList, NetGuard
from gateway.settings import Settings
from gateway.store import Store
from gateway.triggers.pipeline import TriggerJobSink

from ..support import add_scripts, eventually
from ..triggers.support import add_trigger, read_trigger
from .test_websocket_listener import OPTIONS, TIMINGS, WAIT_S, FeedServer

pytestmark = pytest.mark.integration

LOOPBACK = HostList.parse(["127.0.0.0/8", "::1"], "deny")


@pytest.fixture
async def feed() -> AsyncIterator[FeedServer]:
    server = FeedServer()
    await server.start()
    yield server
    await server.stop()


@asynccontextmanager
async def listening(store: Store, settings: Settings, guard: NetGuard) -> AsyncIterator[None]:
    """WebSocket listeners (and an executor, for computed URLs) behind `guard`."""
    executor = Executor(store, settings)
    options = WebsocketOptions(
        open_timeout_s=OPTIONS.open_timeout_s,
        ping_interval_s=OPTIONS.ping_interval_s,
        ping_timeout_s=OPTIONS.ping_timeout_s,
        guard=guard,
    )
    supervisor = LeaseSupervisor(
        f"gw-guard-{uuid.uuid4().hex[:6]}",
        store=SqlLeaseStore(store),
        factories={"websocket": listener_factory(store, options)},
        sink=TriggerJobSink(store),
        alerts=RecordingAlertSink(),
        timings=TIMINGS,
        clock=SystemClock(),
    )
    await executor.start()
    await supervisor.start()
    try:
        yield
    finally:
        await supervisor.stop(drain_timeout_s=1.0)
        await executor.stop(grace_s=1.0)


async def error_of(store: Store, trigger: TriggerRef, expected: str) -> str:
    """The trigger's recorded error, once it mentions `expected`."""

    async def recorded() -> str | None:
        error = (await read_trigger(store, trigger))["error"] or ""
        return error if expected in error else None

    found: str = await eventually(recorded, WAIT_S)
    return found


async def test_a_name_that_resolves_to_a_denied_address_is_refused_at_connect(
    store: Store, settings: Settings, feed: FeedServer
) -> None:
    await add_scripts(store, echo="def main(msg):\n    return msg\n")
    trigger = await add_trigger(store, "by-name", url=f"ws://localhost:{feed.port}/feed")

    async with listening(store, settings, NetGuard(deny=LOOPBACK)):
        error = await error_of(store, trigger, "deny list")

    assert f"cannot connect to ws://localhost:{feed.port}/feed: localhost (" in error
    assert feed.handshakes == 0


async def test_a_computed_url_is_checked_when_the_listener_connects(
    store: Store, settings: Settings
) -> None:
    await add_scripts(
        store,
        echo="def main(msg):\n    return msg\n",
        metadata_url="def main():\n    return 'ws://169.254.169.254/latest/meta-data'\n",
    )
    trigger = await add_trigger(store, "computed", url="$script:f/t/metadata_url")

    async with listening(store, settings, NetGuard()):
        error = await error_of(store, trigger, "link-local")

    assert "169.254.169.254 is a link-local address" in error


async def test_an_allowed_name_connects_to_its_checked_address(
    store: Store, settings: Settings, feed: FeedServer
) -> None:
    await add_scripts(store, echo="def main(msg):\n    return msg\n")
    await add_trigger(store, "allowed", url=f"ws://localhost:{feed.port}/feed")
    allow_localhost = NetGuard(allow=HostList.parse(["localhost"], "allow"))

    async with listening(store, settings, allow_localhost):
        await feed.wait_for_clients()

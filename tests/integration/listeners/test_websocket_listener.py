"""WebSocket triggers against a server of the test's own, through the real lease supervisor, SQL
lease store, job sink and executor: initial messages, frames that become jobs, filters, results
sent back, a URL computed by a script, and a server that goes away and comes back."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any
from uuid import UUID

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from gateway.clock import SystemClock
from gateway.executor.worker import Executor
from gateway.jobs.read import JobFilter, list_jobs
from gateway.listeners.lease import TriggerRef
from gateway.listeners.memory import RecordingAlertSink
from gateway.listeners.sql_lease_store import SqlLeaseStore
from gateway.listeners.supervisor import LeaseSupervisor, LeaseTimings
from gateway.listeners.websocket import WebsocketOptions, listener_factory
from gateway.settings import Settings
from gateway.store import Store
from gateway.triggers.pipeline import TriggerJobSink

from ..support import WS, add_scripts, completed, eventually
from ..triggers.support import add_trigger, read_trigger

pytestmark = pytest.mark.integration

WAIT_S = 20.0
TIMINGS = LeaseTimings(
    claim_interval_s=0.5,
    ping_interval_s=0.2,
    stale_after_s=2.0,
    backoff_base_s=0.1,
    backoff_cap_s=0.5,
)
OPTIONS = WebsocketOptions(open_timeout_s=2.0, ping_interval_s=1.0, ping_timeout_s=1.0)
SCRIPTS = {
    "echo": "def main(msg: str):\n    return {'echo': msg}\n",
    "shout": (
        "def main(msg: str):\n"
        "    if msg == 'boom':\n"
        "        raise ValueError('cannot shout boom')\n"
        "    return msg.upper()\n"
    ),
    "greeting": "def main(name: str):\n    return {'hello': name}\n",
    "feed_url": "def main(port: int):\n    return f'ws://127.0.0.1:{port}/feed'\n",
}


class FeedServer:
    """A WebSocket server that records what clients send and pushes frames to them.

    It can refuse the next handshakes with an HTTP status, and stop and start again on its port.
    """

    def __init__(self) -> None:
        self.port = 0
        self.received: asyncio.Queue[str] = asyncio.Queue()
        self.refusals: list[HTTPStatus] = []
        self.handshakes = 0
        self._clients: set[ServerConnection] = set()
        self._server: Server | None = None

    async def start(self) -> None:
        """Listen on 127.0.0.1 (on the same port as before, after a stop)."""
        self._server = await serve(
            self._serve, "127.0.0.1", self.port, process_request=self._refuse
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every connection (1001, going away) and stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def url(self) -> str:
        """Where clients connect."""
        return f"ws://127.0.0.1:{self.port}/feed"

    async def wait_for_clients(self, count: int = 1) -> None:
        """Return once `count` clients are connected."""

        async def connected() -> bool:
            return len(self._clients) >= count

        await eventually(connected, WAIT_S, 0.02)

    async def push(self, *texts: str) -> None:
        """Send `texts` to every client, once one is connected."""
        await self.wait_for_clients()
        for client in list(self._clients):
            for text in texts:
                await client.send(text)

    async def next_received(self) -> str:
        """The next frame a client sent; fails the test if none comes in time."""
        try:
            async with asyncio.timeout(WAIT_S):
                return await self.received.get()
        except TimeoutError:
            raise AssertionError(f"the server received nothing within {WAIT_S:.0f}s") from None

    def _refuse(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshakes += 1
        if self.refusals:
            status = self.refusals.pop(0)
            return Response(status.value, status.phrase, Headers(), b"")
        return None

    async def _serve(self, connection: ServerConnection) -> None:
        self._clients.add(connection)
        try:
            async for message in connection:
                await self.received.put(message if isinstance(message, str) else repr(message))
        finally:
            self._clients.discard(connection)


@pytest.fixture
async def feed() -> AsyncIterator[FeedServer]:
    """A started feed server, stopped at the end."""
    server = FeedServer()
    await server.start()
    yield server
    await server.stop()


@asynccontextmanager
async def gateway(store: Store, settings: Settings) -> AsyncIterator[RecordingAlertSink]:
    """The executor and a lease supervisor running WebSocket listeners; their alerts."""
    alerts = RecordingAlertSink()
    executor = Executor(store, settings)
    supervisor = LeaseSupervisor(
        f"gw-ws-{uuid.uuid4().hex[:6]}",
        store=SqlLeaseStore(store),
        factories={"websocket": listener_factory(store, OPTIONS)},
        sink=TriggerJobSink(store),
        alerts=alerts,
        timings=TIMINGS,
        clock=SystemClock(),
    )
    await executor.start()
    await supervisor.start()
    try:
        yield alerts
    finally:
        await supervisor.stop(drain_timeout_s=1.0)
        await executor.stop(grace_s=1.0)


async def jobs_of(store: Store, trigger: TriggerRef, count: int) -> list[dict[str, Any]]:
    """The trigger's jobs (not those of its URL or message scripts) by message, once there are
    `count`."""

    async def enough() -> list[dict[str, Any]] | None:
        jobs = await list_jobs(store, WS, JobFilter(trigger=trigger.path, per_page=100))
        events = [job for job in jobs if "msg" in job["args"]]
        return events if len(events) >= count else None

    found: list[dict[str, Any]] = await eventually(enough, WAIT_S)
    return sorted(found, key=lambda job: str(job["args"]["msg"]))


async def test_initial_messages_are_sent_in_order_right_after_connecting(
    store: Store, settings: Settings, feed: FeedServer
) -> None:
    await add_scripts(store, **SCRIPTS)
    await add_trigger(
        store,
        "greeted",
        url=feed.url,
        initial_messages=[
            {"raw_message": '"subscribe"'},
            {"runnable_result": {"path": "f/t/greeting", "args": {"name": "ws"}, "is_flow": False}},
            {"raw_message": "plain"},
        ],
    )

    async with gateway(store, settings):
        received = [await feed.next_received() for _ in range(3)]

    assert received == ["subscribe", json.dumps({"hello": "ws"}), "plain"]


async def test_text_frames_become_jobs_unless_the_filters_drop_them(
    store: Store, settings: Settings, feed: FeedServer
) -> None:
    await add_scripts(store, **SCRIPTS)
    trigger = await add_trigger(
        store, "orders", url=feed.url, filters=[{"key": "type", "value": "order"}]
    )

    async with gateway(store, settings):
        await feed.push('{"type": "order", "n": 1}', '{"type": "noise"}', "not json")
        await feed.push('{"type": "order", "n": 2}')
        jobs = await jobs_of(store, trigger, 2)
        results = [(await completed(store, UUID(job["id"])))["result"] for job in jobs]

    assert [job["args"] for job in jobs] == [
        {"msg": '{"type": "order", "n": 1}'},
        {"msg": '{"type": "order", "n": 2}'},
    ]
    assert {(job["trigger_kind"], job["created_by"]) for job in jobs} == {
        ("websocket", f"ws-{trigger.path}")
    }
    assert [result["echo"] for result in results] == [job["args"]["msg"] for job in jobs]


async def test_job_results_go_back_on_the_socket(
    store: Store, settings: Settings, feed: FeedServer
) -> None:
    await add_scripts(store, **SCRIPTS)
    await add_trigger(store, "answers", script="echo", url=feed.url, can_return_message=True)

    async with gateway(store, settings):
        await feed.push("hello")
        reply = await feed.next_received()

    assert json.loads(reply) == {"echo": "hello"}


async def test_errors_go_back_only_when_the_trigger_asks_for_them(
    store: Store, settings: Settings, feed: FeedServer
) -> None:
    await add_scripts(store, **SCRIPTS)
    quiet = await add_trigger(store, "quiet", script="shout", url=feed.url, can_return_message=True)
    await add_trigger(
        store,
        "loud",
        script="shout",
        url=feed.url,
        can_return_message=True,
        can_return_error_result=True,
    )

    async with gateway(store, settings):
        await feed.wait_for_clients(2)
        await feed.push("boom")
        error = json.loads(await feed.next_received())
        [failed] = await jobs_of(store, quiet, 1)
        await completed(store, UUID(failed["id"]))
        await feed.push("calm")
        replies = {await feed.next_received(), await feed.next_received()}

    assert error["error"]["name"] == "ValueError"
    assert "cannot shout boom" in error["error"]["message"]
    assert replies == {"CALM"}  # a string result goes back as it is, and no second error came


async def test_the_url_can_come_from_a_script(
    store: Store, settings: Settings, feed: FeedServer
) -> None:
    await add_scripts(store, **SCRIPTS)
    trigger = await add_trigger(
        store,
        "computed",
        url="$script:f/t/feed_url",
        url_runnable_args={"port": feed.port},
        initial_messages=[{"raw_message": "hi"}],
    )

    async with gateway(store, settings):
        greeting = await feed.next_received()
        await feed.push("over a computed URL")
        [job] = await jobs_of(store, trigger, 1)

    assert greeting == "hi"
    assert job["args"] == {"msg": "over a computed URL"}


async def test_a_server_that_goes_away_and_comes_back_is_reconnected(
    store: Store, settings: Settings, feed: FeedServer
) -> None:
    await add_scripts(store, **SCRIPTS)
    trigger = await add_trigger(
        store, "flaky", url=feed.url, initial_messages=[{"raw_message": "subscribe"}]
    )

    async with gateway(store, settings) as alerts:
        assert await feed.next_received() == "subscribe"
        await feed.push("before")
        await jobs_of(store, trigger, 1)

        await feed.stop()
        await asyncio.sleep(0.5)  # reconnect attempts fail meanwhile
        feed.refusals = [HTTPStatus.SERVICE_UNAVAILABLE, HTTPStatus.TOO_MANY_REQUESTS]
        await feed.start()

        assert await feed.next_received() == "subscribe"
        await feed.push("after")
        jobs = await jobs_of(store, trigger, 2)
        row = await read_trigger(store, trigger)

    assert [job["args"]["msg"] for job in jobs] == ["after", "before"]
    assert row["mode"] == "enabled"
    assert feed.handshakes >= 4  # the first connection, two refusals, the reconnection
    assert [t for t, _ in alerts.raised] == [trigger]
    assert alerts.cleared == [trigger]


async def test_the_heartbeat_carries_the_last_state_seen(
    store: Store, settings: Settings, feed: FeedServer
) -> None:
    await add_scripts(store, **SCRIPTS)
    await add_trigger(
        store,
        "beating",
        url=feed.url,
        heartbeat={"interval_secs": 1, "message": '{"op": 1, "d": {{state}}}', "state_field": "s"},
    )

    async with gateway(store, settings):
        await feed.push('{"s": 42, "t": "ready"}')
        beats = [json.loads(await feed.next_received())]
        while beats[-1]["d"] is None:  # a beat sent before the state arrived
            beats.append(json.loads(await feed.next_received()))

    assert beats[-1] == {"op": 1, "d": 42}
    assert all(beat == {"op": 1, "d": None} for beat in beats[:-1])

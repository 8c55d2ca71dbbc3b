"""The WebSocket listener over a stand-in connection: frames become batches, refused batches come
again, closes end or fail the stream, handshake errors say whether they are transient."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, cast

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.frames import Close
from websockets.http11 import Response

from gateway.listeners import websocket
from gateway.listeners.base import Batch
from gateway.listeners.lease import Lease, TriggerRef
from gateway.listeners.websocket import (
    WebsocketConnectionError,
    WebsocketListener,
    WebsocketOptions,
    as_text,
    handshake_refusal,
    redact,
    reply_text,
    to_event,
)
from gateway.net_guard import NetGuard
from gateway.scripts import Script
from gateway.store import Store
from gateway.triggers.args import RunnableShape
from gateway.triggers.runnables import Runnable, TriggerTarget, job_dedup_key
from tests.unit.triggers.jobs import job_of

TRIGGER = TriggerRef("websocket", "test", "u/alice/feed")
URL = "wss://bot:secret@feed.example.org:8443/ws?token=abc"
OPTIONS = WebsocketOptions(max_batch=3, batch_window_s=0.05)
UNUSED_STORE = cast(Store, object())  # these tests run no script and return no result


class StandInConnection:
    """What the listener uses of a websockets client connection, fed by the test."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[str | bytes | Exception] = asyncio.Queue()
        self.sent: list[str] = []
        self.closed = False

    async def recv(self) -> str | bytes:
        item = await self.incoming.get()
        if isinstance(item, Exception):
            self.incoming.put_nowait(item)  # a closed connection keeps raising
            raise item
        return item

    async def send(self, text: str) -> None:
        self.sent.append(text)

    async def close(self) -> None:
        self.closed = True

    def feed(self, *items: str | bytes | Exception) -> None:
        for item in items:
            self.incoming.put_nowait(item)


@pytest.fixture(autouse=True)
def no_name_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """The network guard decides as usual, but every name resolves to 192.0.2.1 (no socket)."""

    async def resolve(guard: NetGuard, host: str, port: int) -> str:
        guard.check_host(host)
        return "192.0.2.1"

    monkeypatch.setattr(NetGuard, "resolve", resolve)


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInConnection]:
    """The connection every listener of the test opens."""
    opened = StandInConnection()
    urls: list[str] = []

    async def connect(url: str, **options: Any) -> StandInConnection:
        urls.append(url)
        return opened

    monkeypatch.setattr(websocket, "connect", connect)
    yield opened


def listener(options: WebsocketOptions = OPTIONS, **columns: Any) -> WebsocketListener:
    row = {"path": TRIGGER.path, "url": URL, "mode": "enabled", **columns}
    return WebsocketListener(
        Lease(TRIGGER, "gw-unit", MappingProxyType(row)), UNUSED_STORE, options
    )


async def next_batch(stream: AsyncIterator[Batch]) -> Batch:
    async with asyncio.timeout(5):
        return await anext(stream)


async def test_initial_raw_messages_are_sent_in_order_on_connect(
    connection: StandInConnection,
) -> None:
    ws = listener(initial_messages=[{"raw_message": '"subscribe"'}, {"raw_message": "{}"}])

    await ws.connect()

    assert connection.sent == ["subscribe", "{}"]


async def test_text_frames_become_events_keyed_by_connection_and_number(
    connection: StandInConnection,
) -> None:
    ws = listener()
    await ws.connect()
    connection.feed("first", b"\x00binary is ignored", "second")

    batch = await next_batch(ws.consume())

    assert [event.payload for event in batch.events] == ["first", "second"]
    assert [event.raw for event in batch.events] == [b"first", b"second"]
    assert {event.info["url"] for event in batch.events} == {URL}
    keys = [event.dedup_key or "" for event in batch.events]
    assert keys[0].endswith("/0") and keys[1].endswith("/1")
    assert keys[0].split("/")[0] == keys[1].split("/")[0]


async def test_a_batch_holds_at_most_max_batch_frames(connection: StandInConnection) -> None:
    # A window no busy machine outlasts: the cap ends the first batch, the close the second.
    ws = listener(dataclasses.replace(OPTIONS, batch_window_s=60.0))
    await ws.connect()
    connection.feed(*(f"frame {n}" for n in range(5)))
    connection.feed(ConnectionClosedOK(Close(1001, "restart"), None))
    stream = ws.consume()

    sizes = [len((await next_batch(stream)).events) for _ in range(2)]

    assert sizes == [3, 2]


async def test_a_refused_batch_comes_again_before_new_frames(
    connection: StandInConnection,
) -> None:
    ws = listener()
    await ws.connect()
    stream = ws.consume()
    connection.feed("refused")
    refused = await next_batch(stream)
    connection.feed("later")

    await ws.nack(refused)
    again = await next_batch(stream)
    await ws.ack(again)
    await ws.ack(again)
    after = await next_batch(stream)

    assert again is refused
    assert [event.payload for event in after.events] == ["later"]


async def test_a_clean_close_ends_the_stream_after_the_frames_in_hand(
    connection: StandInConnection,
) -> None:
    ws = listener()
    await ws.connect()
    connection.feed("last words", ConnectionClosedOK(Close(1001, "restart"), None))

    batches = [batch async for batch in ws.consume()]

    assert [[event.payload for event in batch.events] for batch in batches] == [["last words"]]


async def test_a_lost_connection_fails_the_stream_naming_the_url_without_secrets(
    connection: StandInConnection,
) -> None:
    ws = listener()
    await ws.connect()
    connection.feed("in hand", ConnectionClosedError(Close(1011, "keepalive ping timeout"), None))
    stream = ws.consume()

    first = await next_batch(stream)
    with pytest.raises(WebsocketConnectionError) as lost:
        await next_batch(stream)

    assert [event.payload for event in first.events] == ["in hand"]
    assert "wss://feed.example.org:8443/ws was lost" in str(lost.value)
    assert "keepalive ping timeout" in str(lost.value)
    assert "secret" not in str(lost.value) and "token" not in str(lost.value)


async def test_close_closes_the_connection_and_can_be_repeated(
    connection: StandInConnection,
) -> None:
    ws = listener(heartbeat={"interval_secs": 60, "message": "ping"})
    await ws.connect()

    await ws.close()
    await ws.close()

    assert connection.closed


@pytest.mark.parametrize("status", [500, 502, 503, 520, 429])
def test_a_5xx_or_429_handshake_is_transient(status: int) -> None:
    assert "transient" in handshake_refusal(URL, status)


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_another_refused_handshake_points_at_the_url(status: int) -> None:
    message = handshake_refusal(URL, status)

    assert "transient" not in message
    assert f"HTTP {status}: check the URL" in message


async def test_a_refused_handshake_raises_a_connection_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def connect(url: str, **options: Any) -> None:
        raise InvalidStatus(Response(503, "Service Unavailable", Headers()))

    monkeypatch.setattr(websocket, "connect", connect)

    with pytest.raises(WebsocketConnectionError, match="HTTP 503, a transient refusal"):
        await listener().connect()


async def test_an_unreachable_server_raises_a_connection_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def connect(url: str, **options: Any) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(websocket, "connect", connect)

    with pytest.raises(
        WebsocketConnectionError, match=r"cannot connect to wss://feed\.example\.org"
    ):
        await listener().connect()


def test_redact_keeps_scheme_host_port_and_path() -> None:
    assert redact(URL) == "wss://feed.example.org:8443/ws"
    assert redact("ws://[::1]:9/feed") == "ws://[::1]:9/feed"


def test_to_event_keeps_the_configured_url_and_the_trigger_path() -> None:
    event = to_event("hi", "$script:f/ws/url", TRIGGER.path, "c/0")

    assert (event.kind, event.payload, event.raw, event.dedup_key) == (
        "websocket",
        "hi",
        b"hi",
        "c/0",
    )
    assert event.info == {"url": "$script:f/ws/url", "trigger_path": TRIGGER.path}


def test_the_dedup_key_of_an_events_job_is_the_one_the_job_sink_stores() -> None:
    row = {"script_path": "f/t/echo", "is_flow": False, "edited_by": "alice", "email": "a@x.org"}
    target = TriggerTarget.from_row(TRIGGER, {**row, "mode": "enabled"})
    script = Script("test", "f/t/echo", 1, "", "python3", {}, "alice", datetime.now(UTC))

    job = job_of(
        target, to_event("hi", URL, TRIGGER.path, "c/7"), Runnable(script, RunnableShape())
    )

    assert job.dedup_key == job_dedup_key(TRIGGER, "c/7")


@pytest.mark.parametrize(
    ("value", "text"), [("plain", "plain"), ({"a": 1}, '{"a": 1}'), (3, "3"), ('"q"', '"q"')]
)
def test_a_string_goes_as_it_is_and_anything_else_as_json(value: Any, text: str) -> None:
    assert as_text(value) == text


def test_a_failed_jobs_error_is_returned_only_when_asked() -> None:
    failed = {"success": False, "result": {"error": {"name": "ValueError", "message": "no"}}}

    assert reply_text(failed, send_errors=False) is None
    assert (
        reply_text(failed, send_errors=True) == '{"error": {"name": "ValueError", "message": "no"}}'
    )


def test_a_null_result_sends_nothing() -> None:
    assert reply_text({"success": True, "result": None}, send_errors=True) is None

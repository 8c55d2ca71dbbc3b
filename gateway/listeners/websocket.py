"""WebSocket triggers: one websockets client per leased trigger; every text frame is an event.

Delivery is at-most-once: a WebSocket has neither acknowledgements nor replay. A frame sent while
the gateway is not connected, or received but not yet committed when the connection drops or the
process dies, is gone (`WebsocketListener.delivery_guarantee`). A batch the job sink refused
(nack) stays in the listener and is offered again on the same connection. Each frame still gets a
dedup key of its own, ``<connection id>/<frame number>``: a batch offered again after its commit
did in fact happen maps to the jobs it became, and the key is how a returned result finds its job.

Connecting: the URL is the trigger's ``url``, or the string that the script at
``$script:<path>`` (or the flow at ``$flow:<path>``) returns when run with ``url_runnable_args``
as the trigger's owner. Right after the handshake the ``initial_messages`` are sent in order: a
``raw_message`` as written (outer quotes dropped), a ``runnable_result`` as the result of running
that script (a string as it is, anything else as JSON). The client pings every
``ping_interval_s`` and drops the connection when no pong comes within ``ping_timeout_s``. A
``heartbeat`` message is sent every ``interval_secs`` (the first one after an interval), with
``{{state}}`` replaced by the JSON of the last value of its ``state_field`` seen at the top level
of an incoming JSON object (``null`` until then).

Every text frame is yielded and binary frames are ignored; the job sink applies the trigger's
filters.

Returned results (``can_return_message``; never for a suspended trigger, whose jobs are parked):
the supervisor calls `ack` once the batch's jobs are committed, and `ack` starts a task that finds
each event's job by its dedup key (an event the filters dropped has none), waits for the job to
complete and sends its result back as a text frame (a string as it is, anything else as JSON,
nothing for null). A failed job's error is sent only with ``can_return_error_result``. These tasks
belong to the connection: `close` cancels them, so a result that comes after the connection
dropped is not sent on the next one.

Errors: whatever prevents or ends a connection raises `WebsocketConnectionError`, naming the URL
(without credentials or query) and the cause; a handshake answered with HTTP 5xx or 429 is
called transient; a frame over ``max_frame_bytes`` closes the connection (1009) like any other
protocol error. A URL or initial message that cannot be computed raises `WebsocketSetupError`.
Either way the lease supervisor keeps the lease and connects a new listener with capped backoff:
a trigger is never disabled by a connection error. A server that closes the connection cleanly
ends `consume`, and the supervisor reconnects the same way.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidStatus,
    InvalidURI,
    WebSocketException,
)
from websockets.uri import parse_uri

from gateway.errors import DestinationBlocked, GatewayError, NotFound
from gateway.flow_versions import latest_flow_version
from gateway.jobs.enqueue import enqueue
from gateway.jobs.model import NewJob
from gateway.jobs.read import wait_for_completion
from gateway.listeners.base import Batch, ListenerFactory
from gateway.listeners.lease import Lease, TriggerRef
from gateway.listeners.websocket_config import (
    Heartbeat,
    RawMessage,
    RunnableCall,
    RunnableResultMessage,
    WebsocketTriggerConfig,
    validate_trigger,
)
from gateway.net_guard import NetGuard
from gateway.store import Store
from gateway.triggers.event import Event
from gateway.triggers.runnables import TriggerTarget, job_dedup_key

logger = logging.getLogger(__name__)

_TRANSIENT_STATUS: Final = 429


class WebsocketConnectionError(GatewayError):
    """The WebSocket server cannot be reached, refused the handshake, or dropped the connection."""


class WebsocketSetupError(GatewayError):
    """The URL or an initial message could not be computed: its runnable failed or gave no text."""


@dataclass(frozen=True, slots=True)
class WebsocketOptions:
    """Timings and limits of WebSocket listeners, in seconds and bytes."""

    open_timeout_s: float = 10.0
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    close_timeout_s: float = 5.0
    result_timeout_s: float = 600.0
    max_frame_bytes: int = 1024 * 1024
    max_batch: int = 100
    batch_window_s: float = 0.01
    guard: NetGuard = field(default_factory=NetGuard)
    """Where connections may go (link-local and metadata addresses never, by default)."""


class WebsocketListener:
    """One connection of a WebSocket trigger: frames in, initial messages and results out."""

    kind: ClassVar[str] = "websocket"
    delivery_guarantee: ClassVar[str] = "at-most-once"

    def __init__(self, lease: Lease, store: Store, options: WebsocketOptions) -> None:
        self._lease = lease
        self._store = store
        self._options = options
        self._config: WebsocketTriggerConfig | None = None
        self._connection: ClientConnection | None = None
        self._url = ""
        self._connection_id = uuid.uuid4().hex
        self._frames = itertools.count()
        self._tokens = itertools.count()
        self._delivered: dict[int, Batch] = {}
        self._nacked: deque[Batch] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._state: Any = None

    async def connect(self) -> None:
        """Compute the URL, open the connection, send the initial messages, start the heartbeat."""
        config = self._config = validate_trigger(self._lease.row)
        url = self._url = await self._resolve_url(config)
        self._connection = connection = await _open(url, self._options)
        for number, message in enumerate(config.initial_messages, start=1):
            text = await self._initial_text(number, message)
            await _send(connection, url, text)
        if config.heartbeat is not None:
            self._spawn(self._beat(connection, config.heartbeat), "heartbeat")

    async def consume(self) -> AsyncIterator[Batch]:
        """Yield the text frames in batches (refused batches first) until the server closes."""
        config, connection = self._connected()
        trigger = self._lease.trigger
        while True:
            if self._nacked:
                batch = self._nacked.popleft()
            else:
                texts = await self._collect(connection)
                if not texts:
                    return
                events = [
                    to_event(text, config.url, trigger.path, self._next_key()) for text in texts
                ]
                batch = Batch(events=events, ack_token=next(self._tokens))
            self._delivered[batch.ack_token] = batch
            yield batch

    async def ack(self, batch: Batch) -> None:
        """Forget the batch; send its jobs' results back when the trigger asks for them."""
        config, connection = self._config, self._connection
        if (
            self._delivered.pop(batch.ack_token, None) is None
            or config is None
            or connection is None
        ):
            return  # acked before, or closed meanwhile: no socket to return results on
        if config.can_return_message and self._lease.row.get("mode") != "suspended":
            self._spawn(self._return_results(connection, config, batch.events), "results")

    async def nack(self, batch: Batch) -> None:
        """Offer the batch again before new frames (lost if the connection drops first)."""
        if self._delivered.pop(batch.ack_token, None) is not None:
            self._nacked.append(batch)

    async def close(self) -> None:
        """Stop the heartbeat and result tasks, close the connection; idempotent."""
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    def _connected(self) -> tuple[WebsocketTriggerConfig, ClientConnection]:
        if self._config is None or self._connection is None:
            raise RuntimeError(f"websocket trigger {self._lease.trigger} is not connected")
        return self._config, self._connection

    def _next_key(self) -> str:
        return f"{self._connection_id}/{next(self._frames)}"

    def _spawn(self, work: Coroutine[Any, Any, None], purpose: str) -> None:
        task = asyncio.create_task(work, name=f"websocket-{purpose}:{self._lease.trigger}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve_url(self, config: WebsocketTriggerConfig) -> str:
        call = config.url_runnable
        if call is None:
            return config.url
        result = await self._run(call, "the URL")
        if not isinstance(result, str):
            raise WebsocketSetupError(
                f"the URL: {_name(call)} did not return a string but {json.dumps(result)[:200]}"
            )
        return result

    async def _initial_text(self, number: int, message: RawMessage | RunnableResultMessage) -> str:
        if isinstance(message, RawMessage):
            return message.text
        return as_text(await self._run(message.runnable_result, f"initial message {number}"))

    async def _run(self, call: RunnableCall, purpose: str) -> Any:
        """The result of running `call` as the trigger's owner; WebsocketSetupError otherwise."""
        trigger = self._lease.trigger
        owner = TriggerTarget.from_row(trigger, self._lease.row)
        try:
            async with self._store.transaction() as tx:
                flow = (
                    await latest_flow_version(tx, trigger.workspace_id, call.path)
                    if call.is_flow
                    else None
                )
                job = NewJob(
                    workspace_id=trigger.workspace_id,
                    args=call.args,
                    permissioned_as=owner.permissioned_as,
                    permissioned_as_email=owner.email,
                    created_by=owner.created_by,
                    runnable_path=call.path,
                    flow_value=flow.value if flow else None,
                    flow_version=flow.version if flow else None,
                    trigger=trigger.path,
                    trigger_kind=trigger.kind,
                )
                [queued] = await enqueue(tx, [job])
        except NotFound as exc:
            raise WebsocketSetupError(f"{purpose}: {exc}") from exc
        timeout_s = self._options.result_timeout_s
        done = await wait_for_completion(
            self._store, trigger.workspace_id, queued.job_id, timeout_s
        )
        if done is None:
            raise WebsocketSetupError(
                f"{purpose}: {_name(call)} did not complete within {timeout_s:.0f}s "
                f"(job {queued.job_id})"
            )
        if not done["success"]:
            raise WebsocketSetupError(
                f"{purpose}: {_name(call)} failed (job {queued.job_id}): "
                f"{_error_text(done['result'])}"
            )
        return done["result"]

    async def _collect(self, connection: ClientConnection) -> list[str]:
        """The next text frame and those that follow within the batch window; [] once the
        server closed the connection cleanly."""
        texts: list[str] = []
        loop = asyncio.get_running_loop()
        try:
            texts.append(await self._next_text(connection))
            deadline = loop.time() + self._options.batch_window_s
            while len(texts) < self._options.max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        texts.append(await self._next_text(connection))
                except TimeoutError:
                    break
        except ConnectionClosed as exc:
            # The frames in hand go first; the next call finds the connection closed again.
            if not texts and not isinstance(exc, ConnectionClosedOK):
                raise WebsocketConnectionError(
                    f"the connection to {redact(self._url)} was lost: {_describe(exc)}"
                ) from exc
        return texts

    async def _next_text(self, connection: ClientConnection) -> str:
        while True:
            frame = await connection.recv()
            if isinstance(frame, str):
                self._observe(frame)
                return frame

    def _observe(self, text: str) -> None:
        """Keep the heartbeat's state field when the frame is a JSON object that has it."""
        heartbeat = self._config.heartbeat if self._config is not None else None
        if heartbeat is None or heartbeat.state_field is None:
            return
        try:
            decoded = json.loads(text)
        except ValueError:
            return
        if isinstance(decoded, dict) and heartbeat.state_field in decoded:
            self._state = decoded[heartbeat.state_field]

    async def _beat(self, connection: ClientConnection, heartbeat: Heartbeat) -> None:
        while True:
            await asyncio.sleep(heartbeat.interval_secs)
            text = heartbeat.message.replace("{{state}}", json.dumps(self._state))
            try:
                await connection.send(text)
            except ConnectionClosed:
                return  # `consume` reports the closed connection

    async def _return_results(
        self, connection: ClientConnection, config: WebsocketTriggerConfig, events: Sequence[Event]
    ) -> None:
        """Send each event's job result back, in event order, once the job completed."""
        trigger = self._lease.trigger
        try:
            async with self._store.transaction() as tx:
                found = [
                    await tx.fetch_one(
                        "get_dedup_job",
                        workspace_id=trigger.workspace_id,
                        dedup_key=job_dedup_key(trigger, event.dedup_key),
                    )
                    for event in events
                    if event.dedup_key is not None
                ]
            for row in found:
                if row is None:
                    continue  # filtered out or quarantined: no job, nothing to return
                done = await wait_for_completion(
                    self._store, trigger.workspace_id, row["job_id"], self._options.result_timeout_s
                )
                if done is None:
                    logger.warning(
                        "websocket trigger %s: job %s did not complete within %.0fs, its result "
                        "is not returned",
                        trigger,
                        row["job_id"],
                        self._options.result_timeout_s,
                        extra=_extra(trigger, "result_timeout"),
                    )
                    continue
                text = reply_text(done, send_errors=config.can_return_error_result)
                if text is not None:
                    await connection.send(text)
        except ConnectionClosed:
            return  # `consume` reports the closed connection
        except Exception as exc:
            logger.warning(
                "websocket trigger %s: cannot return job results: %s",
                trigger,
                _describe(exc),
                extra=_extra(trigger, "result_failed"),
            )


def listener_factory(store: Store, options: WebsocketOptions | None = None) -> ListenerFactory:
    """Builds the listener of a claimed WebSocket trigger."""
    chosen = options if options is not None else WebsocketOptions()
    return lambda lease: WebsocketListener(lease, store, chosen)


def to_event(text: str, url: str, trigger_path: str, dedup_key: str) -> Event:
    """The event of one text frame; `url` is the trigger's configured one (maybe ``$script:``)."""
    return Event(
        kind="websocket",
        payload=text,
        info={"url": url, "trigger_path": trigger_path},
        dedup_key=dedup_key,
        raw=text.encode(),
    )


def as_text(value: Any) -> str:
    """A value as a text frame: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def reply_text(job: Mapping[str, Any], *, send_errors: bool) -> str | None:
    """The frame returning a completed job's result; None when nothing is to be sent."""
    if job["result"] is None or not (job["success"] or send_errors):
        return None
    return as_text(job["result"])


def handshake_refusal(url: str, status: int) -> str:
    """Why a handshake answered with HTTP `status` failed, saying whether it is transient."""
    if status >= 500 or status == _TRANSIENT_STATUS:
        return f"{redact(url)} answered the handshake with HTTP {status}, a transient refusal"
    return (
        f"{redact(url)} refused the handshake with HTTP {status}: check the URL and its credentials"
    )


def redact(url: str) -> str:
    """The URL without credentials, query or fragment, fit for statuses and logs."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path}"


async def _open(url: str, options: WebsocketOptions) -> ClientConnection:
    try:
        target = parse_uri(url)
        # The connection goes to the address the guard checked (no proxy): a name that
        # resolves elsewhere a moment later is not asked again.
        address = await options.guard.resolve(target.host, target.port)
        return await connect(
            url,
            open_timeout=options.open_timeout_s,
            ping_interval=options.ping_interval_s,
            ping_timeout=options.ping_timeout_s,
            close_timeout=options.close_timeout_s,
            max_size=options.max_frame_bytes,
            host=address,
            port=target.port,
            proxy=None,
        )
    except DestinationBlocked as exc:
        raise WebsocketConnectionError(f"cannot connect to {redact(url)}: {exc}") from exc
    except InvalidStatus as exc:
        raise WebsocketConnectionError(handshake_refusal(url, exc.response.status_code)) from exc
    except InvalidURI as exc:
        raise WebsocketConnectionError(f"{redact(url)} is not a WebSocket URL") from exc
    except (OSError, TimeoutError, WebSocketException) as exc:
        raise WebsocketConnectionError(
            f"cannot connect to {redact(url)}: {_describe(exc)}"
        ) from exc


async def _send(connection: ClientConnection, url: str, text: str) -> None:
    try:
        await connection.send(text)
    except ConnectionClosed as exc:
        raise WebsocketConnectionError(
            f"the connection to {redact(url)} was lost: {_describe(exc)}"
        ) from exc


def _name(call: RunnableCall) -> str:
    return f"{'flow' if call.is_flow else 'script'} {call.path}"


def _error_text(result: Any) -> str:
    error = result.get("error") if isinstance(result, Mapping) else None
    if isinstance(error, Mapping):
        return f"{error.get('name', 'Error')}: {error.get('message', '')}"
    return json.dumps(result)[:500]


def _extra(trigger: TriggerRef, action: str) -> dict[str, str]:
    return {"action": action, "trigger": str(trigger), "kind": trigger.kind}


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

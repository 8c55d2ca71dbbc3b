"""Running a paho-mqtt client's network I/O on the asyncio event loop, without a thread of its own.

paho's `connect` blocks (DNS, TCP, TLS handshake), so it runs in a worker thread; the socket
callbacks paho makes from there are held and applied on the loop once it returns, so that paho is
never used from two threads at once. From then on every paho call happens on the loop's thread:
reads and writes from the loop's socket callbacks, keep-alive from a task calling `loop_misc`
every second. paho reports a lost connection through the client's `on_disconnect`; an exception
from a read or write goes to `on_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any, Final

import paho.mqtt.client as mqtt

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT_S: Final = 1.0


class PahoOnLoop:
    """Drives one paho client from the running event loop: connect, watch its socket, close."""

    def __init__(self, client: mqtt.Client, on_error: Callable[[str], None]) -> None:
        self._client = client
        self._on_error = on_error
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._deferred: list[Callable[[], None]] = []
        self._fd: int | None = None
        self._reading = False
        self._paused = False
        self._closed = asyncio.Event()
        self._keepalive: asyncio.Task[None] | None = None
        self._connecting: asyncio.Future[Any] | None = None
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_socket_register_write
        client.on_socket_unregister_write = self._on_socket_unregister_write

    async def connect(self, host: str, port: int, keepalive_s: int, **options: Any) -> None:
        """Open the socket and send CONNECT; the CONNACK arrives through `on_connect`."""
        connecting = asyncio.ensure_future(
            asyncio.to_thread(self._client.connect, host, port, keepalive_s, **options)
        )
        self._connecting = connecting
        try:
            # A cancelled wait leaves the thread running: `close` waits for it.
            await asyncio.shield(connecting)
        except BaseException:
            self._deferred.clear()
            raise
        deferred, self._deferred = self._deferred, []
        for action in deferred:
            action()
        self._keepalive = self._loop.create_task(
            self._keep_alive(), name=f"mqtt-keepalive:{host}:{port}"
        )

    def pause_reading(self) -> None:
        """Stop reading from the broker (TCP pushes back) until `resume_reading`."""
        self._paused = True
        self._unwatch_reads()

    def resume_reading(self) -> None:
        """Read from the broker again."""
        self._paused = False
        if not self._reading and self._fd is not None:
            self._loop.add_reader(self._fd, self._readable)
            self._reading = True

    async def close(self) -> None:
        """Send DISCONNECT after what is queued before it, then close the socket; idempotent."""
        try:
            if self._connecting is not None and not self._connecting.done():
                await asyncio.wait({self._connecting})  # bounded by paho's connect timeout
            if self._fd is not None:
                await self._disconnect()
        finally:
            self._deferred.clear()
            self._stop_watching()
            sock = self._client.socket()
            if sock is not None:
                sock.close()
            if self._keepalive is not None:
                self._keepalive.cancel()
                await asyncio.wait({self._keepalive})

    async def _disconnect(self) -> None:
        try:
            self._client.disconnect()
            self._client.loop_write()
        except Exception as exc:
            # Closing anyway: the broker resends what was not acknowledged.
            logger.debug("MQTT disconnect failed: %s", exc)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self._closed.wait()

    async def _keep_alive(self) -> None:
        """Let paho send PINGREQ and notice a silent broker (it reports via on_disconnect)."""
        while True:
            await asyncio.sleep(1)
            self._client.loop_misc()

    def _on_loop(self, action: Callable[[], None]) -> None:
        if threading.get_ident() == self._loop_thread:
            action()
        else:  # paho is inside `connect`, in the worker thread: applied once that returns
            self._deferred.append(action)

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        def watch() -> None:
            self._fd = sock.fileno()
            self._closed.clear()
            if not self._paused:
                self.resume_reading()

        self._on_loop(watch)

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._stop_watching)

    def _on_socket_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        def watch() -> None:
            if self._fd is not None:
                self._loop.add_writer(self._fd, self._writable)

        self._on_loop(watch)

    def _on_socket_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        def unwatch() -> None:
            if self._fd is not None:
                self._loop.remove_writer(self._fd)

        self._on_loop(unwatch)

    def _unwatch_reads(self) -> None:
        if self._reading and self._fd is not None:
            self._loop.remove_reader(self._fd)
        self._reading = False

    def _stop_watching(self) -> None:
        self._unwatch_reads()
        if self._fd is not None:
            self._loop.remove_writer(self._fd)
        self._fd = None
        self._closed.set()

    def _readable(self) -> None:
        try:
            while self._reading:
                self._client.loop_read()
                sock = self._client.socket()
                # TLS may hold decrypted bytes that the selector cannot see.
                if not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                    break
        except Exception as exc:
            self._on_error(f"reading from the MQTT broker failed: {describe_error(exc)}")

    def _writable(self) -> None:
        try:
            self._client.loop_write()
        except Exception as exc:
            self._on_error(f"writing to the MQTT broker failed: {describe_error(exc)}")


def describe_error(exc: BaseException) -> str:
    """The exception's type and message, for error texts and logs."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

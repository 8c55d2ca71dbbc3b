"""The HTTP server the gateway runs its app under: uvicorn, with each answer sent in one write.

uvicorn writes a response's status line and headers as soon as the app starts it, and its body
when the app sends it: two `send` calls on the socket for every answer with a body (an async
route's job id, a sync route's result). On loopback and on a busy instance each call costs as much
as the gateway's own work on the request, and the client is woken twice. `CoalescedWrites` holds
what the protocol writes during one turn of the event loop and hands it to the socket in one call
at the loop's next turn (a callback scheduled with the first write); a response streamed over many
turns (server-sent events) still leaves turn by turn.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterable
from typing import Any, TypeVar, cast

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

_Protocol = TypeVar("_Protocol", bound=asyncio.Protocol)


class CoalescedWrites:
    """A transport whose writes of one event-loop turn reach the socket as one write."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Hold `data` until the loop's next turn."""
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        """Hold every chunk of `chunks`, in order."""
        for chunk in chunks:
            self.write(chunk)

    def _flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if self._transport.is_closing():
            return
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def get_write_buffer_size(self) -> int:
        """The bytes held here and in the socket transport's own buffer."""
        return sum(map(len, self._pending)) + self._transport.get_write_buffer_size()

    def close(self) -> None:
        """Send what is held, then close once the socket transport's buffer is drained."""
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        """Send what is held, then end the write side."""
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        """Drop what is held and close at once."""
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def coalescing(protocol: type[_Protocol]) -> type[_Protocol]:
    """`protocol` (a uvicorn HTTP protocol) writing through `CoalescedWrites`."""

    def connection_made(self: _Protocol, transport: asyncio.BaseTransport) -> None:
        wrapped = CoalescedWrites(cast(asyncio.Transport, transport), asyncio.get_running_loop())
        protocol.connection_made(self, cast(asyncio.Transport, wrapped))

    return type(f"Coalescing{protocol.__name__}", (protocol,), {"connection_made": connection_made})


def http_protocol() -> type[asyncio.Protocol]:
    """The protocol uvicorn would pick (httptools when installed, else h11), coalescing."""
    if importlib.util.find_spec("httptools") is None:
        return coalescing(H11Protocol)
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    return coalescing(HttpToolsProtocol)


def server_config(app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    """The uvicorn settings the gateway serves `app` with on `host`:`port`."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=http_protocol(),
        log_config=None,
        access_log=False,
        lifespan="off",
    )

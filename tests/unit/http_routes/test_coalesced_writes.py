"""`CoalescedWrites` hands what the HTTP protocol writes in one event-loop turn to the socket
transport in one write, keeps the order, and sends what it holds before the connection closes."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from gateway.http_routes.server import CoalescedWrites, coalescing, http_protocol


class RecordingTransport:
    """A socket transport that notes what it is asked to do."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.steps: list[str] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.steps.append("write")

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 7

    def close(self) -> None:
        self.closing = True
        self.steps.append("close")

    def abort(self) -> None:
        self.closing = True
        self.steps.append("abort")

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8000) if name == "sockname" else default


def wrap(transport: RecordingTransport) -> CoalescedWrites:
    return CoalescedWrites(cast(asyncio.Transport, transport), asyncio.get_running_loop())


async def next_turn() -> None:
    await asyncio.sleep(0)


async def test_the_writes_of_one_turn_leave_as_one_write() -> None:
    socket = RecordingTransport()
    writes = wrap(socket)

    head = b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n"
    writes.write(head)
    writes.write(b"")
    writes.writelines([b"o", bytearray(b"k")])
    assert socket.writes == []
    assert writes.get_write_buffer_size() == len(head) + 2 + 7  # held, and the socket's own
    await next_turn()

    assert socket.writes == [head + b"ok"]


async def test_a_stream_leaves_at_every_turn() -> None:
    socket = RecordingTransport()
    writes = wrap(socket)

    for event in (b"data: 1\n\n", b"data: 2\n\n"):
        writes.write(event)
        await next_turn()

    assert socket.writes == [b"data: 1\n\n", b"data: 2\n\n"]


async def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    closed, aborted = RecordingTransport(), RecordingTransport()
    closing, aborting = wrap(closed), wrap(aborted)

    closing.write(b"last answer")
    closing.close()
    aborting.write(b"never sent")
    aborting.abort()
    await next_turn()

    assert (closed.writes, closed.steps) == ([b"last answer"], ["write", "close"])
    assert (aborted.writes, aborted.steps) == ([], ["abort"])


async def test_nothing_is_written_once_the_socket_is_closing() -> None:
    socket = RecordingTransport()
    writes = wrap(socket)

    writes.write(b"too late")
    socket.closing = True
    await next_turn()

    assert socket.writes == []


async def test_everything_else_is_the_socket_transports() -> None:
    writes = wrap(RecordingTransport())

    assert writes.get_extra_info("sockname") == ("127.0.0.1", 8000)


def test_the_protocol_is_uvicorns_own_coalescing() -> None:
    protocol = http_protocol()

    assert protocol.__name__.startswith("Coalescing")
    assert coalescing(protocol).__mro__[1] is protocol

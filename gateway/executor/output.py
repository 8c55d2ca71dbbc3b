"""A job child's output: delivered to the job's log as it arrives, its last line remembered."""

from __future__ import annotations

import asyncio
import codecs
import logging

from gateway.executor.outcome import LogSink

logger = logging.getLogger(__name__)

READ_SIZE = 65536
"""Bytes read from a pipe at once: a chunk is delivered as soon as it is read, so a chatty job
gives a few large chunks and a quiet one a chunk per line."""


class JobLog:
    """One job's `LogSink`, called for one chunk at a time.

    A sink that fails is logged once and skipped: a broken log store does not fail the job.
    """

    def __init__(self, sink: LogSink, script_path: str) -> None:
        self._sink = sink
        self._script_path = script_path
        self._lock = asyncio.Lock()
        self._failed = False

    async def write(self, text: str) -> None:
        """Deliver a chunk of output text."""
        if not text:
            return
        async with self._lock:
            try:
                await self._sink(text)
            except Exception:
                if not self._failed:
                    self._failed = True
                    logger.warning(
                        "the log sink of a %s job failed; its output is dropped",
                        self._script_path,
                        exc_info=True,
                        extra={"action": "job_log_failed"},
                    )


def utf8_decoder() -> codecs.IncrementalDecoder:
    """A decoder that keeps a character split across two reads whole."""
    return codecs.getincrementaldecoder("utf-8")(errors="replace")


class LastLine:
    """The last non-empty line of a byte stream; at most `cap` bytes of it are kept."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._current = bytearray()
        self._current_size = 0
        self.line = b""
        self.size = 0
        """The line's full size in bytes, which may exceed the bytes kept."""

    def feed(self, chunk: bytes) -> None:
        """Account for a chunk of the stream."""
        *complete, rest = chunk.split(b"\n")
        for part in complete:
            self._extend(part)
            self.end()
        self._extend(rest)

    def end(self) -> None:
        """End the current line (at a newline, or at the end of the stream)."""
        if self._current.strip():
            self.line = bytes(self._current)
            self.size = self._current_size
        self._current.clear()
        self._current_size = 0

    def _extend(self, part: bytes) -> None:
        room = self._cap - len(self._current)
        if room > 0:
            self._current += part[:room]
        self._current_size += len(part)


async def pump(stream: asyncio.StreamReader, log: JobLog, last_line: LastLine) -> None:
    """Copy a pipe to the job's log until it closes."""
    decoder = utf8_decoder()
    while chunk := await stream.read(READ_SIZE):
        last_line.feed(chunk)
        await log.write(decoder.decode(chunk))
    last_line.end()
    await log.write(decoder.decode(b"", final=True))

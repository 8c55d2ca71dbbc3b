"""Time as a seam: the system clock in production, a virtual clock in unit tests.

Everything that waits or measures elapsed time (heartbeats, staleness windows, backoff) takes a
`Clock`, so a test can walk an interleaving step by step without sleeping for real.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol

# Each round runs every ready callback once; a chain of in-memory awaits that hands a result from
# task to task needs a round per hand-off, and a hundred is far more than any chain in the tests.
_SETTLE_ROUNDS = 100


class Clock(Protocol):
    """A monotonic time source and a way to wait on it."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; only differences are meaningful."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the calling task for `seconds` of this clock's time."""
        ...


class SystemClock:
    """The real clock: `time.monotonic` and `asyncio.sleep`."""

    def monotonic(self) -> float:
        """Return `time.monotonic()`."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(seconds)


class FakeClock:
    """Virtual time for tests: `sleep` suspends until `advance` moves time past its deadline.

    `advance` wakes sleepers one deadline at a time, in order, and lets the woken tasks run until
    they wait again before moving on, so a task that sleeps again within the same advance is
    woken too. Nothing sleeps for real.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._order = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        """The current virtual time."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until virtual time reaches now + `seconds`; a non-positive wait only yields."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        wakeup = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), wakeup))
        await wakeup

    async def advance(self, seconds: float) -> None:
        """Move virtual time forward by `seconds`, waking every sleeper whose deadline passes."""
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back {-seconds}s")
        target = self._now + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, wakeup = heapq.heappop(self._sleepers)
            if wakeup.done():  # its task was cancelled while sleeping
                continue
            self._now = max(self._now, deadline)
            wakeup.set_result(None)
            await self.settle()
        self._now = target

    async def settle(self) -> None:
        """Let every runnable task run until it waits on something (virtual time stands still)."""
        for _ in range(_SETTLE_ROUNDS):
            await asyncio.sleep(0)

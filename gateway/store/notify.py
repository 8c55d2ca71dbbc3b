"""In-process fan-out of notifications (job queued, job completed, routes changed, ...).

On SQLite, committed transactions publish here directly. On PostgreSQL, a committed transaction
publishes here too, and a LISTEN connection forwards every NOTIFY of the known channels, so
other instances' commits arrive as well (and this instance's own, a second time: a subscriber
takes a notification as "look again", never as a count).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

JOBS_QUEUED = "gateway_jobs_queued"
JOB_COMPLETED = "gateway_job_completed"
JOB_CANCELED = "gateway_job_canceled"
ROUTES_CHANGED = "gateway_routes_changed"
CHANNELS = (JOBS_QUEUED, JOB_COMPLETED, JOB_CANCELED, ROUTES_CHANGED)


class Broadcaster:
    """Deliver each published payload to every current subscriber of its channel."""

    def __init__(self) -> None:
        self._subscribers: defaultdict[str, set[asyncio.Queue[str]]] = defaultdict(set)

    def publish(self, channel: str, payload: str = "") -> None:
        """Hand `payload` to every subscriber of `channel`; never blocks."""
        for queue in self._subscribers.get(channel, ()):
            queue.put_nowait(payload)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[asyncio.Queue[str]]:
        """A queue receiving the payloads published on `channel` while the block runs."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown notification channel {channel!r}")
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._subscribers[channel].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[channel].discard(queue)

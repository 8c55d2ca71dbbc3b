"""A `sync_sse` route's answer: the job's progress as server-sent events.

Events (`data: <json>` each): `{"type": "update", "running": bool, "completed": false}` when
the job's state changes, `{"type": "ping"}` every `ping_interval_s` otherwise, and finally
`{"type": "update", "completed": true, "only_result": <result>}`, or `{"type": "timeout"}`.
Logs are not streamed: the caller of a route is not the owner of the job. The job is queued as
for an `async` route, so a client that leaves ends its stream, not the job.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from starlette.responses import StreamingResponse

from gateway.jobs.read import get_job, wait_for_completion
from gateway.store import Store


def sse_response(events: AsyncIterator[bytes]) -> StreamingResponse:
    """A `text/event-stream` response of `events`."""
    return StreamingResponse(
        events, media_type="text/event-stream", headers={"cache-control": "no-cache"}
    )


async def job_events(
    store: Store, workspace_id: str, job_id: UUID, *, timeout_s: float, ping_interval_s: float
) -> AsyncIterator[bytes]:
    """The events of one job until it completes or `timeout_s` passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    job = await get_job(store, workspace_id, job_id)
    running: bool | None = None
    while job["type"] != "CompletedJob":
        if bool(job["running"]) != running:
            running = bool(job["running"])
            yield _event({"type": "update", "running": running, "completed": False})
        else:
            yield _event({"type": "ping"})
        remaining = deadline - loop.time()
        if remaining <= 0:
            yield _event({"type": "timeout"})
            return
        wait_s = min(ping_interval_s, remaining)
        done = await wait_for_completion(store, workspace_id, job_id, wait_s)
        job = done if done is not None else await get_job(store, workspace_id, job_id)
    yield _event({"type": "update", "completed": True, "only_result": job["result"]})


def _event(value: Any) -> bytes:
    return b"data: " + json.dumps(value, separators=(",", ":")).encode() + b"\n\n"

"""Waiting for a job on behalf of an HTTP client: on completion notifications, until the job
completes, the wait times out, or the client goes away."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from starlette.types import Receive

from gateway.jobs.read import wait_for_completion
from gateway.store import Store


class ClientDisconnected(Exception):
    """The client closed its connection before the job completed."""


async def wait_while_connected(
    store: Store, workspace_id: str, job_id: UUID, receive: Receive, timeout_s: float
) -> dict[str, Any] | None:
    """The completed job, None on timeout; ClientDisconnected when the client left first.

    The request body must have been read: what `receive` gives next is the disconnect.
    """
    waiting = asyncio.create_task(
        wait_for_completion(store, workspace_id, job_id, timeout_s),
        name=f"http-route:wait:{job_id}",
    )
    watching = asyncio.create_task(_disconnect(receive), name=f"http-route:watch:{job_id}")
    try:
        await asyncio.wait((waiting, watching), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiting, watching):
            task.cancel()
        await asyncio.gather(waiting, watching, return_exceptions=True)
    if waiting.cancelled():
        raise ClientDisconnected
    return waiting.result()


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass

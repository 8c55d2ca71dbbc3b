"""Racing a client library call against the loss of its connection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


async def unless_lost(step: Awaitable[T], lost: asyncio.Future[Any]) -> T:
    """Await `step`; raise the connection's failure if the connection is lost first.

    When `step` fails after the connection was lost, the connection's failure is raised: it says
    more than the call's own error.
    """
    task = asyncio.ensure_future(step)
    try:
        await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
    if lost.done() and (task.cancelled() or task.exception() is not None):
        lost.result()
    return task.result()

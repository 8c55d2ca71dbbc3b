"""Gathering pushed messages into batches: the first one, and those that follow it closely."""

from __future__ import annotations

import asyncio
from typing import TypeVar

T = TypeVar("T")


async def collect_batch(queue: asyncio.Queue[T], max_batch: int, window_s: float) -> list[T]:
    """The next item of `queue`, and those that arrive within `window_s` after it (at most
    `max_batch` in all)."""
    items = [await queue.get()]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + window_s
    while len(items) < max_batch:
        if not queue.empty():
            items.append(queue.get_nowait())
            continue
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        try:
            async with asyncio.timeout(remaining):
                items.append(await queue.get())
        except TimeoutError:
            break
    return items

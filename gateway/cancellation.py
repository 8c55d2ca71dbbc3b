"""Background loops that catch `Exception` must still stop when their task is cancelled.

A cancellation can reach a loop as another exception: psycopg, cancelled in the middle of a
statement or a transaction's start, may leave its connection broken and raise a driver error
from the cleanup instead of the `CancelledError`. A loop that logs `Exception` and goes on would
then run on, and whoever cancelled it (a shutdown) would wait for it forever.
"""

from __future__ import annotations

import asyncio


def raise_if_cancelling() -> None:
    """Raise `CancelledError` when the current task was asked to stop; call it first in an
    `except Exception` block of a loop that is stopped by cancelling its task."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError

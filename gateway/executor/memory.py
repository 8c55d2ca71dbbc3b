"""The peak memory of a job's process tree, sampled from /proc while it runs.

Used where the child cannot report its own peak (bash and the commands it starts). The figure is
the largest peak resident set (``VmHWM``) of any process of the tree seen by a sample: a process
that lives shorter than one interval may be missed, and the memory of processes that run side by
side is not added up. So it is a lower bound of the job's real peak, honest about what it is.
"""

from __future__ import annotations

import asyncio
import contextlib

SAMPLE_INTERVAL_S = 0.05


class TreeMemorySampler:
    """Tracks the largest ``VmHWM`` among a process and its descendants."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.peak_kb: int | None = None

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_INTERVAL_S)

    def sample(self) -> None:
        """Take one sample now. Reads of /proc are served from kernel memory, never from disk."""
        pending = [self._pid]
        while pending:
            pid = pending.pop()
            peak = _peak_kb(pid)
            if peak is not None and (self.peak_kb is None or peak > self.peak_kb):
                self.peak_kb = peak
            pending.extend(_children(pid))


def _peak_kb(pid: int) -> int | None:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1])
    return None


def _children(pid: int) -> list[int]:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{pid}/children", "rb") as children:
        return [int(child) for child in children.read().split()]
    return []

"""The size limit of one source message: a larger event goes to the quarantine, never to a job.

The check is on the raw bytes the listener received, before filters parse them. The quarantine
keeps the first `KEPT_BYTES` of an oversized event (enough to see what it was), not all of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Final

from gateway.triggers.event import Event
from gateway.triggers.runnables import Rejected

KEPT_BYTES: Final = 64 * 1024


def split_oversized(
    events: Sequence[Event], max_bytes: int | None
) -> tuple[list[Event], list[Rejected]]:
    """The events within `max_bytes` (None: no limit), and the others with the reason."""
    if max_bytes is None:
        return list(events), []
    kept: list[Event] = []
    oversized: list[Rejected] = []
    for event in events:
        size = len(event.raw)
        if size <= max_bytes:
            kept.append(event)
            continue
        reason = (
            f"event too large: {size} bytes, over the limit of {max_bytes} bytes "
            f"(GATEWAY_MAX_EVENT_BYTES); its first {KEPT_BYTES} bytes are kept"
        )
        oversized.append(Rejected(dataclasses.replace(event, raw=event.raw[:KEPT_BYTES]), reason))
    return kept, oversized

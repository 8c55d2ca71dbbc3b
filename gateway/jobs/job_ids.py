"""Job ids: UUIDs that grow with time (version 7, RFC 9562), as Windmill's ULID-based ids do.

The first 48 bits are the creation time in milliseconds, the rest random. New jobs then land at
the right edge of every index keyed by job id instead of at random places: a batch of jobs
dirties a few pages where random ids dirtied one per job and per index, which is most of what a
SQLite commit writes to its log, and PostgreSQL's indexes on ids stay dense and cached.
"""

from __future__ import annotations

import os
import time
from typing import Final
from uuid import UUID

_RANDOM_BITS: Final = 74
_VERSION_7: Final = 0x7 << 76
_VARIANT_RFC: Final = 0b10 << 62
_RAND_B_MASK: Final = (1 << 62) - 1


def new_job_id() -> UUID:
    """A fresh job id."""
    return _job_id(time.time_ns() // 1_000_000, int.from_bytes(os.urandom(10)))


def new_job_ids(count: int) -> list[UUID]:
    """`count` fresh job ids, from one read of the clock and of the random source."""
    millis = time.time_ns() // 1_000_000
    random = os.urandom(10 * count)
    return [_job_id(millis, int.from_bytes(random[i : i + 10])) for i in range(0, 10 * count, 10)]


def _job_id(millis: int, random: int) -> UUID:
    """The version 7 UUID of `millis` and 80 random bits (74 of them used)."""
    random &= (1 << _RANDOM_BITS) - 1
    rand_a, rand_b = random >> 62, random & _RAND_B_MASK
    return UUID(int=(millis << 80) | _VERSION_7 | (rand_a << 64) | _VARIANT_RFC | rand_b)

"""`ExpiringCache`: a bounded in-process map whose entries expire (auth resources, tokens, seen
signatures)."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ExpiringCache(Generic[K, V]):
    """Entries live `ttl_s` seconds (on a monotonic clock); the oldest go first when full."""

    def __init__(
        self,
        ttl_s: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        """The live value of `key`, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= self._clock():
            del self._entries[key]
            return None
        return value

    def put(self, key: K, value: V, ttl_s: float | None = None) -> None:
        """Keep `value` for `ttl_s` seconds (the cache's default when None)."""
        self._entries.pop(key, None)
        self._entries[key] = (self._clock() + (self._ttl_s if ttl_s is None else ttl_s), value)
        while len(self._entries) > self._max_entries:
            del self._entries[next(iter(self._entries))]

"""Capped, jittered exponential backoff for reconnecting listeners."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# 2**63 seconds is far beyond any cap; clamping keeps the arithmetic finite for any attempt count.
_MAX_EXPONENT = 63


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before retry number `attempt` (0 for the first retry).

    The ceiling doubles per attempt from `base_s` up to `cap_s`; the delay is drawn from the upper
    half of the ceiling, so that delays still grow (below the cap each one is at least the previous
    ceiling) while instances that failed together spread out. The caller keeps the attempt count
    and resets it to 0 on success.
    """

    base_s: float
    cap_s: float
    rng: random.Random

    def __post_init__(self) -> None:
        if not 0 < self.base_s <= self.cap_s:
            raise ValueError(f"backoff needs 0 < base_s <= cap_s, got {self.base_s}, {self.cap_s}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry `attempt`, between half the ceiling and the ceiling."""
        ceiling = min(self.cap_s, math.ldexp(self.base_s, min(max(attempt, 0), _MAX_EXPONENT)))
        return ceiling * (0.5 + 0.5 * self.rng.random())

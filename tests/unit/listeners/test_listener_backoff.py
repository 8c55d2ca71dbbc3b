"""Backoff between reconnect attempts: grows, is capped, is jittered."""

from __future__ import annotations

import random

import pytest

from gateway.listeners.backoff import Backoff


class FixedRandom(random.Random):
    """A random source that always draws the same fraction."""

    def __init__(self, fraction: float) -> None:
        super().__init__()
        self.fraction = fraction

    def random(self) -> float:
        return self.fraction


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.999])
def test_delay_lies_in_the_upper_half_of_a_doubling_capped_ceiling(fraction: float) -> None:
    backoff = Backoff(base_s=1, cap_s=60, rng=FixedRandom(fraction))

    delays = [backoff.delay(attempt) for attempt in range(10)]

    ceilings = [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    assert delays == [ceiling * (0.5 + 0.5 * fraction) for ceiling in ceilings]


def test_delays_never_shrink_below_the_cap_whatever_the_draws() -> None:
    backoff = Backoff(base_s=0.5, cap_s=30, rng=random.Random(7))

    delays = [backoff.delay(attempt) for attempt in range(6)]

    assert delays == sorted(delays)


def test_huge_attempt_counts_stay_at_the_cap() -> None:
    backoff = Backoff(base_s=1, cap_s=60, rng=FixedRandom(0.999))

    assert 30 <= backoff.delay(10_000) < 60


def test_jitter_spreads_instances_that_failed_together() -> None:
    delays = {Backoff(1, 60, random.Random(seed)).delay(3) for seed in range(20)}

    assert len(delays) > 1
    assert all(4 <= delay < 8 for delay in delays)


@pytest.mark.parametrize(("base_s", "cap_s"), [(0, 60), (-1, 60), (10, 5)])
def test_nonsensical_bounds_are_refused(base_s: float, cap_s: float) -> None:
    with pytest.raises(ValueError, match="base_s"):
        Backoff(base_s, cap_s, random.Random())

"""The virtual clock the listener tests walk their interleavings on."""

from __future__ import annotations

import asyncio

import pytest

from gateway.clock import FakeClock


async def test_sleep_returns_only_once_time_reaches_its_deadline() -> None:
    clock = FakeClock()
    sleeper = asyncio.create_task(clock.sleep(5))

    await clock.advance(4.9)
    assert not sleeper.done()

    await clock.advance(0.1)
    assert sleeper.done()
    assert clock.monotonic() == 5


async def test_advance_wakes_sleepers_in_deadline_order_at_their_deadline() -> None:
    clock = FakeClock()
    woken: list[tuple[str, float]] = []

    async def sleep_then_note(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woken.append((name, clock.monotonic()))

    tasks = [
        asyncio.create_task(sleep_then_note("late", 3)),
        asyncio.create_task(sleep_then_note("early", 1)),
    ]
    await clock.advance(10)

    assert woken == [("early", 1), ("late", 3)]
    assert clock.monotonic() == 10
    await asyncio.gather(*tasks)


async def test_a_task_that_sleeps_again_within_the_advance_is_woken_again() -> None:
    clock = FakeClock()
    ticks: list[float] = []

    async def tick_forever() -> None:
        while True:
            await clock.sleep(2)
            ticks.append(clock.monotonic())

    ticker = asyncio.create_task(tick_forever())
    await clock.advance(7)
    ticker.cancel()

    assert ticks == [2, 4, 6]


async def test_a_cancelled_sleeper_is_skipped() -> None:
    clock = FakeClock()
    cancelled = asyncio.create_task(clock.sleep(1))
    kept = asyncio.create_task(clock.sleep(2))
    await clock.settle()
    cancelled.cancel()

    await clock.advance(2)

    assert cancelled.cancelled()
    assert kept.done()


async def test_a_zero_sleep_only_yields() -> None:
    clock = FakeClock(start=3)

    await clock.sleep(0)

    assert clock.monotonic() == 3


async def test_time_never_goes_back() -> None:
    clock = FakeClock()

    with pytest.raises(ValueError, match="cannot go back"):
        await clock.advance(-1)

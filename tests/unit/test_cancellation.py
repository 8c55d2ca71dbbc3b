"""A loop that catches `Exception` still stops when its task is cancelled, even when the
cancellation reached it as another error."""

from __future__ import annotations

import asyncio

from gateway.cancellation import raise_if_cancelling


async def test_a_cancellation_turned_into_an_error_still_stops_the_loop() -> None:
    calls = 0
    waiting = asyncio.Event()

    async def statement() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("an ordinary failure: the loop goes on")
        waiting.set()
        try:
            await asyncio.sleep(0.5)
        except asyncio.CancelledError:
            raise RuntimeError("the connection broke while the statement was cancelled") from None

    async def loop() -> None:
        for _ in range(5):  # bounded: a loop that swallowed its cancellation ends all the same
            try:
                await statement()
            except Exception:
                raise_if_cancelling()

    task = asyncio.create_task(loop())
    await waiting.wait()
    task.cancel()
    # `wait`, not `wait_for`, which would cancel the loop again and wait for it.
    await asyncio.wait({task}, timeout=5)
    assert task.cancelled()
    assert calls == 2


async def test_outside_a_cancellation_it_does_nothing() -> None:
    try:
        raise RuntimeError("failed")
    except RuntimeError:
        raise_if_cancelling()

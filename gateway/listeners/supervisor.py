"""The lease supervisor: claims triggers, keeps one listener per held lease, gives leases back.

For every registered kind a claim pass runs at start and then every `claim_interval_s`; each won
lease gets a runner task (`listener:<kind>:<workspace>/<path>`). A runner races two things:

- the heartbeat renews the lease every `ping_interval_s` and writes the trigger's status. A ping
  that matches no row (edited, disabled, deleted, taken) stops the runner at once; pings that keep
  failing stop it once the lease must be presumed expired, so that only one instance consumes.
- the consume loop connects, then submits each batch as jobs and acks it only after the submit
  returned. Connection and submit errors keep the lease and retry with backoff; an alert is raised
  once per connection incident and cleared by the next successful connect.

On `stop`, runners finish the batch in hand (up to a drain timeout), their listeners are closed and
the leases still held are released, so another instance takes over at once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from gateway.clock import Clock
from gateway.listeners.backoff import Backoff
from gateway.listeners.base import (
    AlertSink,
    Batch,
    JobSink,
    Listener,
    ListenerFactory,
    PipelinedListener,
)
from gateway.listeners.lease import CONNECTING, Lease, LeaseLost, LeaseStore, TriggerRef
from gateway.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LeaseTimings:
    """The lease protocol's intervals, in seconds (Windmill's values by default)."""

    claim_interval_s: float = 15.0
    ping_interval_s: float = 5.0
    stale_after_s: float = 15.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LeaseTimings:
        """The timings configured for this instance."""
        return cls(
            claim_interval_s=settings.lease_claim_interval_s,
            ping_interval_s=settings.lease_ping_interval_s,
            stale_after_s=settings.lease_stale_after_s,
            backoff_base_s=settings.listener_backoff_base_s,
            backoff_cap_s=settings.listener_backoff_cap_s,
        )

    def __post_init__(self) -> None:
        if self.claim_interval_s <= 0:
            raise ValueError(f"claim_interval_s must be positive, got {self.claim_interval_s}")
        if not 0 < self.ping_interval_s < self.stale_after_s:
            raise ValueError(
                f"ping_interval_s ({self.ping_interval_s}) must be positive and shorter than "
                f"stale_after_s ({self.stale_after_s}), or other instances see held leases as stale"
            )


class LeaseSupervisor:
    """Claims the triggers of the registered kinds and runs one listener per held lease."""

    def __init__(
        self,
        server_id: str,
        *,
        store: LeaseStore,
        factories: Mapping[str, ListenerFactory],
        sink: JobSink,
        alerts: AlertSink,
        timings: LeaseTimings,
        clock: Clock,
    ) -> None:
        self._server_id = server_id
        self._factories = dict(factories)
        self._context = _RunnerContext(
            store=store,
            sink=sink,
            alerts=alerts,
            timings=timings,
            clock=clock,
            backoff=Backoff(timings.backoff_base_s, timings.backoff_cap_s, random.Random()),
        )
        self._runners: dict[TriggerRef, _LeaseRunner] = {}
        self._claimer: asyncio.Task[None] | None = None

    def running(self) -> frozenset[TriggerRef]:
        """The triggers this instance currently holds and consumes."""
        return frozenset(self._runners)

    async def start(self) -> None:
        """Run a claim pass now, then one every `claim_interval_s` until `stop`."""
        if self._claimer is not None:
            raise RuntimeError(f"lease supervisor {self._server_id} was already started")
        logger.info(
            "lease supervisor %s starting for %s",
            self._server_id,
            ", ".join(self._factories) or "no kinds",
            extra={"action": "supervisor_started"},
        )
        await self._claim_pass()
        self._claimer = asyncio.create_task(self._claim_forever(), name="lease-claims")

    async def stop(self, drain_timeout_s: float) -> None:
        """Stop claiming and consuming, then release every lease still held.

        Runners finish the batch in hand (submit and ack) for up to `drain_timeout_s`, then are
        cancelled; listeners are closed before their leases are released.
        """
        if self._claimer is not None:
            await _cancel_and_wait(self._claimer)
        runners = list(self._runners.values())
        for runner in runners:
            runner.request_stop()
        late = await _wait_on_clock(
            self._context.clock, [runner.task for runner in runners], drain_timeout_s
        )
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
        for runner in runners:
            if runner.still_held:
                await self._release(runner.lease)
        logger.info(
            "lease supervisor %s stopped", self._server_id, extra={"action": "supervisor_stopped"}
        )

    async def _claim_forever(self) -> None:
        while True:
            await self._context.clock.sleep(self._context.timings.claim_interval_s)
            await self._claim_pass()

    async def _claim_pass(self) -> None:
        for kind, factory in self._factories.items():
            try:
                won = await self._context.store.claim_stale(
                    kind, self._server_id, self._context.timings.stale_after_s
                )
            except Exception as exc:
                logger.warning(
                    "claim pass for %s triggers failed, retrying in %.2fs: %s",
                    kind,
                    self._context.timings.claim_interval_s,
                    _describe(exc),
                    extra={"action": "claim_failed", "kind": kind},
                )
                continue
            for lease in won:
                # A claim can re-win a lease we still run (our pings failed for a while and the
                # database came back): the claim renewed it, the running listener carries on.
                if lease.trigger not in self._runners:
                    self._spawn(lease, factory)

    def _spawn(self, lease: Lease, factory: ListenerFactory) -> None:
        trigger = lease.trigger
        logger.info(
            "%s claimed %s trigger %s",
            self._server_id,
            trigger.kind,
            trigger,
            extra=_extra(trigger, "lease_claimed"),
        )
        runner = _LeaseRunner(lease, factory, self._context)
        self._runners[trigger] = runner
        runner.task.add_done_callback(lambda _: self._forget(runner))

    def _forget(self, runner: _LeaseRunner) -> None:
        if self._runners.get(runner.lease.trigger) is runner:
            del self._runners[runner.lease.trigger]

    async def _release(self, lease: Lease) -> None:
        trigger = lease.trigger
        try:
            await self._context.store.release(lease)
        except Exception as exc:
            logger.warning(
                "could not release %s trigger %s, it becomes claimable once stale: %s",
                trigger.kind,
                trigger,
                _describe(exc),
                extra=_extra(trigger, "release_failed"),
            )
            return
        logger.info(
            "released %s trigger %s", trigger.kind, trigger, extra=_extra(trigger, "lease_released")
        )


class _Exit(enum.Enum):
    """Why a runner stopped."""

    LOST = "lost"  # the row no longer names this instance
    EXPIRED = "expired"  # the lease could not be renewed within the staleness window
    DRAINED = "drained"  # shutdown asked it to stop; the lease is still ours to release


@dataclass(frozen=True, slots=True)
class _RunnerContext:
    """What every runner of one supervisor shares."""

    store: LeaseStore
    sink: JobSink
    alerts: AlertSink
    timings: LeaseTimings
    clock: Clock
    backoff: Backoff


class _LeaseRunner:
    """Keeps one leased trigger consumed: heartbeat, connect, deliver, reconnect."""

    def __init__(self, lease: Lease, factory: ListenerFactory, context: _RunnerContext) -> None:
        self.lease = lease
        self.still_held = True
        self._factory = factory
        self._context = context
        self._status: str | None = CONNECTING
        self._failures = 0  # consecutive failures, the backoff attempt; reset by any success
        self._alerted = False  # an alert is open for the current connection incident
        self._delivering = False
        self._draining = False
        trigger = lease.trigger
        self.task = asyncio.create_task(self._run(), name=f"listener:{trigger.kind}:{trigger}")

    def request_stop(self) -> None:
        """Stop after the batch in hand is submitted and acked, or at once if there is none."""
        self._draining = True
        if not self._delivering:
            self.task.cancel()

    async def _run(self) -> None:
        trigger = self.lease.trigger
        try:
            outcome = await self._race()
        except Exception:
            logger.exception(
                "runner of %s trigger %s crashed; the lease goes stale and is claimed again",
                trigger.kind,
                trigger,
                extra=_extra(trigger, "runner_crashed"),
            )
            return
        if outcome is _Exit.DRAINED:
            return
        self.still_held = False
        if outcome is _Exit.LOST:
            try:
                await self._context.store.reset_for_restart(trigger)
            except Exception as exc:
                logger.warning(
                    "could not reset %s trigger %s for restart, it is claimable once stale: %s",
                    trigger.kind,
                    trigger,
                    _describe(exc),
                    extra=_extra(trigger, "reset_failed"),
                )

    async def _race(self) -> _Exit:
        trigger = self.lease.trigger
        heartbeat = asyncio.create_task(
            self._heartbeat(), name=f"heartbeat:{trigger.kind}:{trigger}"
        )
        consume = asyncio.create_task(self._consume(), name=f"consume:{trigger.kind}:{trigger}")
        try:
            done, _ = await asyncio.wait({heartbeat, consume}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await _cancel_and_wait(heartbeat)
            await _cancel_and_wait(consume)
        # A lost lease outranks a drained stream: it decides whether there is anything to release.
        return (heartbeat if heartbeat in done else consume).result()

    async def _heartbeat(self) -> _Exit:
        clock, timings, trigger = self._context.clock, self._context.timings, self.lease.trigger
        renewed_at = clock.monotonic()  # the claim has just renewed the lease
        while True:
            await clock.sleep(timings.ping_interval_s)
            started = clock.monotonic()
            try:
                held = await self._ping(renewed_at + timings.stale_after_s - started)
            except Exception as exc:
                unrenewed_s = clock.monotonic() - renewed_at
                if unrenewed_s >= timings.stale_after_s:
                    logger.warning(
                        "%s trigger %s: lease not renewed for %.2fs, stopping so that another "
                        "instance takes over: %s",
                        trigger.kind,
                        trigger,
                        unrenewed_s,
                        _describe(exc),
                        extra=_extra(trigger, "lease_expired"),
                    )
                    return _Exit.EXPIRED
                logger.warning(
                    "%s trigger %s: ping failed: %s",
                    trigger.kind,
                    trigger,
                    _describe(exc),
                    extra=_extra(trigger, "ping_failed"),
                )
                continue
            if not held:
                logger.info(
                    "%s trigger %s changed, disabled, deleted or taken, stopping",
                    trigger.kind,
                    trigger,
                    extra=_extra(trigger, "lease_lost"),
                )
                return _Exit.LOST
            # The ping was sent at `started`, so the database renewed the lease no earlier.
            renewed_at = started

    async def _ping(self, timeout_s: float) -> bool:
        """Ping the store, giving up after `timeout_s`: a hung ping must not hide an expiry."""
        trigger = self.lease.trigger
        ping = asyncio.create_task(
            self._context.store.ping(self.lease, self._status),
            name=f"ping:{trigger.kind}:{trigger}",
        )
        try:
            unanswered = await _wait_on_clock(self._context.clock, [ping], timeout_s)
        finally:
            await _cancel_and_wait(ping)
        if unanswered:
            raise TimeoutError(f"the ping got no answer within {max(timeout_s, 0):.2f}s")
        return ping.result()

    async def _consume(self) -> _Exit:
        while True:
            listener: Listener | None = None
            try:
                listener = self._factory(self.lease)
                await listener.connect()
            except Exception as exc:
                problem = f"cannot connect: {_describe(exc)}"
            else:
                await self._connected()
                try:
                    outcome = await self._deliver_stream(listener)
                except Exception as exc:
                    problem = f"connection lost: {_describe(exc)}"
                else:
                    if outcome is not None:
                        return outcome
                    problem = "connection lost: the source closed the stream"
            finally:
                if listener is not None:
                    await self._close(listener)
            await self._back_off(problem, "listener_failed", alert=True)

    async def _connected(self) -> None:
        trigger = self.lease.trigger
        self._status = None
        self._failures = 0
        logger.info(
            "%s trigger %s connected",
            trigger.kind,
            trigger,
            extra=_extra(trigger, "listener_connected"),
        )
        if self._alerted:
            try:
                await self._context.alerts.clear_alert(trigger)
            except Exception as exc:
                logger.warning(
                    "could not clear the alert of %s trigger %s: %s",
                    trigger.kind,
                    trigger,
                    _describe(exc),
                    extra=_extra(trigger, "alert_failed"),
                )
            else:
                self._alerted = False

    async def _deliver_stream(self, listener: Listener) -> _Exit | None:
        """Deliver batches until the stream ends (None) or the runner must stop.

        A `PipelinedListener` has its next batches read and submitted while earlier ones are
        still being submitted (up to its `max_batches_in_flight`), so that the database works
        on one batch while this process prepares the next; any other listener goes one batch
        at a time. Batches are settled in the order they were read: each is acked once its own
        submit returned and every earlier batch was acked; a failed submit nacks its batch and
        every batch read after it, latest first.
        """
        trigger = self.lease.trigger
        depth = listener.max_batches_in_flight if isinstance(listener, PipelinedListener) else 1
        stream = listener.consume()
        window: deque[_InFlight] = deque()
        reading: asyncio.Task[Batch | None] | None = None
        ended = False
        try:
            while True:
                if reading is None and len(window) < depth and not (ended or self._draining):
                    reading = asyncio.create_task(_read(stream), name=f"read:{trigger}")
                heads = [
                    t for t in (reading, window[0].submit if window else None) if t is not None
                ]
                if not heads:
                    return _Exit.DRAINED if self._draining else None
                await asyncio.wait(heads, return_when=asyncio.FIRST_COMPLETED)
                if window and window[0].submit.done():
                    head = window.popleft()
                    failure = head.submit.exception()
                    if failure is None:
                        await listener.ack(head.batch)
                        self._status = None
                        self._failures = 0
                        if self._draining and not window:
                            return _Exit.DRAINED
                    else:
                        later = await _settle_all(window, reading)
                        reading = None
                        outcome = await self._failed(listener, head.batch, later, failure)
                        if outcome is not None:
                            return outcome
                elif reading is not None and reading.done():
                    batch = reading.result()
                    reading = None
                    if batch is None:
                        ended = True
                    elif not self._draining:  # else dropped unacked: the source delivers it again
                        submit = self._context.sink.submit(self.lease, batch.events)
                        task = asyncio.create_task(submit, name=f"submit:{trigger}")
                        window.append(_InFlight(batch, task))
                self._delivering = bool(window)
        finally:
            # Unacked, these batches are delivered again by the source.
            await _abandon([t for t in (reading, *(f.submit for f in window)) if t is not None])
            self._delivering = False
            # Run the generator's own cleanup now, before the listener is closed.
            if isinstance(stream, AsyncGenerator):
                await stream.aclose()

    async def _failed(
        self, listener: Listener, batch: Batch, later: list[Batch], failure: BaseException
    ) -> _Exit | None:
        """Nack a batch whose submit failed and the batches read after it, then stop on a lost
        lease or back off."""
        trigger = self.lease.trigger
        if isinstance(failure, LeaseLost):
            logger.info(
                "%s trigger %s: lease lost on submit, stopping: %s",
                trigger.kind,
                trigger,
                failure,
                extra=_extra(trigger, "lease_lost"),
            )
            try:
                for nacked in [*reversed(later), batch]:
                    await listener.nack(nacked)
            except Exception as nack_exc:
                logger.warning(
                    "%s trigger %s: nack failed, the source redelivers on its own timeout: %s",
                    trigger.kind,
                    trigger,
                    _describe(nack_exc),
                    extra=_extra(trigger, "nack_failed"),
                )
            return _Exit.LOST
        for nacked in [*reversed(later), batch]:
            await listener.nack(nacked)
        if self._draining:
            return _Exit.DRAINED
        await self._back_off(
            f"cannot submit jobs: {_describe(failure)}", "submit_failed", alert=False
        )
        return None

    async def _back_off(self, problem: str, action: str, *, alert: bool) -> None:
        """Record the problem as the trigger's status, alert once if asked, wait to retry."""
        trigger = self.lease.trigger
        delay = self._context.backoff.delay(self._failures)
        self._failures += 1
        self._status = f"{problem}; retrying in {delay:.2f}s"
        logger.warning(
            "%s trigger %s: %s", trigger.kind, trigger, self._status, extra=_extra(trigger, action)
        )
        if alert and not self._alerted:
            try:
                await self._context.alerts.raise_alert(
                    trigger, f"{trigger.kind} trigger {trigger}: {problem}"
                )
            except Exception as exc:
                logger.warning(
                    "could not raise an alert for %s trigger %s: %s",
                    trigger.kind,
                    trigger,
                    _describe(exc),
                    extra=_extra(trigger, "alert_failed"),
                )
            else:
                self._alerted = True
        await self._context.clock.sleep(delay)

    async def _close(self, listener: Listener) -> None:
        trigger = self.lease.trigger
        try:
            await listener.close()
        except Exception as exc:
            logger.warning(
                "%s trigger %s: closing the listener failed: %s",
                trigger.kind,
                trigger,
                _describe(exc),
                extra=_extra(trigger, "close_failed"),
            )


@dataclass(frozen=True, slots=True)
class _InFlight:
    """A batch read from the source and the task submitting its events as jobs."""

    batch: Batch
    submit: asyncio.Task[list[UUID]]


async def _read(stream: AsyncIterator[Batch]) -> Batch | None:
    """The stream's next batch; None once it ended."""
    return await anext(stream, None)


async def _settle_all(
    window: deque[_InFlight], reading: asyncio.Task[Batch | None] | None
) -> list[Batch]:
    """Wait for the submits still in flight and the read in progress; every batch they hold, in
    the order read. A read that failed adds no batch: its stream is over, so the next read finds
    it ended and the runner connects again."""
    tasks: list[asyncio.Task[Any]] = [entry.submit for entry in window]
    if reading is not None:
        tasks.append(reading)
    if tasks:
        await asyncio.wait(tasks)
    failures = [task.exception() for task in tasks]  # retrieved: the nacks answer for them
    batches = [entry.batch for entry in window]
    window.clear()
    if reading is not None and failures[-1] is None and (read := reading.result()):
        batches.append(read)
    return batches


async def _abandon(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel the tasks and wait for them; their outcomes no longer matter."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled():
            task.exception()


def _extra(trigger: TriggerRef, action: str) -> dict[str, str]:
    return {"action": action, "trigger": str(trigger), "kind": trigger.kind}


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it has finished; the caller's own cancellation propagates."""
    task.cancel()
    await asyncio.wait([task])


async def _wait_on_clock(
    clock: Clock, tasks: Collection[asyncio.Task[Any]], timeout_s: float
) -> set[asyncio.Task[Any]]:
    """Wait until every task is done or `timeout_s` passed on `clock`; return the ones pending."""
    pending = {task for task in tasks if not task.done()}
    if not pending:
        return pending
    timer = asyncio.create_task(clock.sleep(timeout_s), name="clock-timeout")
    try:
        while pending and not timer.done():
            done, _ = await asyncio.wait({*pending, timer}, return_when=asyncio.FIRST_COMPLETED)
            pending -= done
    finally:
        await _cancel_and_wait(timer)
    return pending

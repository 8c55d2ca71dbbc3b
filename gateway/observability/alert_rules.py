"""Alert rules: conditions an operator must hear about, checked every `interval_s` by one task per
instance. Each rule fires when its condition starts and clears when it ends:

- `trigger_in_error`: a trigger has been in state `error` for `trigger_error_after_s`;
- `trigger_unheld`: a trigger has been `unheld` (enabled, held by nobody) for `unheld_after_s`;
- `quarantine_growing`: `quarantine_min_events` events of a trigger, quarantined in the last
  `quarantine_window_s`, wait for a redrive;
- `source_lag`: a trigger's lag is over `lag_messages` or `lag_bytes` (off while both are None);
- `job_failures`: the queue wrote `job_failed` alerts for a script (a job failed after its
  retries); clears once a later job of the script succeeded, closing those alerts with it.

Each incident is one `alerts` row (`alert_type` = the rule, `resource` = `<kind>_trigger/<path>`
or the script path), opened when the rule fires and closed (`acknowledged`) when it clears, with
one notice each way to the optional webhook. The passes of all instances are serialised by a lock
in the database, and a rule opens a row only when none is open, so instances never double an
incident. How long a condition has held is measured by each instance on its own clock, from the
pass that first saw it; a condition that cannot be read (an unknown lag) neither fires nor clears.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.cancellation import raise_if_cancelling
from gateway.clock import Clock, SystemClock
from gateway.listeners.supervisor import LeaseTimings
from gateway.net_guard import NetGuard
from gateway.observability.alerts import trigger_resource
from gateway.observability.notifier import Notifier, WebhookNotifier
from gateway.observability.source_lag import LagProbe
from gateway.observability.trigger_health import (
    HealthState,
    TriggerHealth,
    read_trigger_health,
    with_lags,
)
from gateway.settings import Settings
from gateway.store import Row, Store, Transaction, fetch_all

logger = logging.getLogger(__name__)

TRIGGER_IN_ERROR: Final = "trigger_in_error"
TRIGGER_UNHELD: Final = "trigger_unheld"
QUARANTINE_GROWING: Final = "quarantine_growing"
SOURCE_LAG: Final = "source_lag"
JOB_FAILURES: Final = "job_failures"

IncidentKey = tuple[str, str, str]
"""(rule, workspace, resource): what one incident is about."""


@dataclass(frozen=True, slots=True)
class AlertThresholds:
    """When the rules fire; a lag threshold of None turns the `source_lag` rule off."""

    interval_s: float = 30.0
    trigger_error_after_s: float = 300.0
    unheld_after_s: float = 60.0
    quarantine_window_s: float = 3600.0
    quarantine_min_events: int = 1
    lag_messages: int | None = None
    lag_bytes: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertThresholds:
        """The thresholds configured for this instance."""
        return cls(
            interval_s=settings.alert_interval_s,
            trigger_error_after_s=settings.alert_trigger_error_after_s,
            unheld_after_s=settings.alert_unheld_after_s,
            quarantine_window_s=settings.alert_quarantine_window_s,
            quarantine_min_events=settings.alert_quarantine_min_events,
            lag_messages=settings.alert_lag_messages,
            lag_bytes=settings.alert_lag_bytes,
        )

    @property
    def measures_lag(self) -> bool:
        """Whether the `source_lag` rule is on."""
        return self.lag_messages is not None or self.lag_bytes is not None

    def lasting_s(self, rule: str) -> float:
        """How long a condition of `rule` must last before it fires."""
        return {
            TRIGGER_IN_ERROR: self.trigger_error_after_s,
            TRIGGER_UNHELD: self.unheld_after_s,
        }.get(rule, 0.0)


@dataclass(frozen=True, slots=True)
class Condition:
    """A rule's condition, seen true in one pass, about one resource of one workspace."""

    rule: str
    workspace_id: str
    resource: str
    message: str

    @property
    def key(self) -> IncidentKey:
        """The incident the condition belongs to."""
        return (self.rule, self.workspace_id, self.resource)


@dataclass(frozen=True, slots=True)
class Observation:
    """What one pass saw: the conditions that hold, and the incidents it cannot judge."""

    conditions: list[Condition] = field(default_factory=list)
    undetermined: set[IncidentKey] = field(default_factory=set)


def trigger_conditions(health: Iterable[TriggerHealth], thresholds: AlertThresholds) -> Observation:
    """The trigger rules' conditions among the statuses of one workspace's triggers."""
    seen = Observation()
    for status in health:
        trigger = status.trigger
        resource = trigger_resource(trigger)
        holding: list[tuple[str, str]] = []
        if status.state is HealthState.ERROR:
            holding.append((TRIGGER_IN_ERROR, f"is in error: {status.error}"))
        if status.state is HealthState.UNHELD:
            ping = status.last_ping_age_s
            since = f" (last ping {ping:.0f}s ago)" if ping is not None else ""
            holding.append((TRIGGER_UNHELD, f"is {status.mode} but no instance holds it{since}"))
        if status.quarantined_recently >= thresholds.quarantine_min_events:
            holding.append(
                (
                    QUARANTINE_GROWING,
                    f"quarantined {status.quarantined_recently} event(s) in the last "
                    f"{thresholds.quarantine_window_s:g}s; {status.quarantined} wait for a redrive",
                )
            )
        lag = status.lag
        limit = None
        if lag is not None:
            limit = {"messages": thresholds.lag_messages, "bytes": thresholds.lag_bytes}[lag.unit]
        if lag is not None and limit is not None:
            if lag.value is None:
                seen.undetermined.add((SOURCE_LAG, trigger.workspace_id, resource))
            elif lag.value > limit:
                holding.append(
                    (SOURCE_LAG, f"is {lag.value} {lag.unit} behind its source (over {limit})")
                )
        name = f"{trigger.kind} trigger {trigger}"
        seen.conditions.extend(
            Condition(rule, trigger.workspace_id, resource, f"{name} {text}")
            for rule, text in holding
        )
    return seen


@dataclass(frozen=True, slots=True)
class JobFailureSignal:
    """A script's unresolved `job_failed` alerts, and whether a later job of it succeeded."""

    workspace_id: str
    script_path: str
    failures: int
    last_id: int
    last_message: str
    recovered: bool

    @classmethod
    def from_row(cls, row: Row) -> JobFailureSignal:
        """Build from a `list_job_failure_signals` row."""
        return cls(
            workspace_id=row["workspace_id"],
            script_path=row["resource"],
            failures=int(row["failures"]),
            last_id=int(row["last_id"]),
            last_message=row["message"],
            recovered=bool(row["recovered"]),
        )

    @property
    def key(self) -> IncidentKey:
        """The incident of the script's failures."""
        return (JOB_FAILURES, self.workspace_id, self.script_path)

    def condition(self) -> Condition:
        """The `job_failures` condition this signal is."""
        return Condition(
            JOB_FAILURES,
            self.workspace_id,
            self.script_path,
            f"script {self.script_path} in {self.workspace_id}: {self.failures} job(s) failed "
            f"after their retries; the latest: {self.last_message}",
        )


@dataclass(frozen=True, slots=True)
class Notice:
    """An incident that fired or cleared in a pass."""

    rule: str
    workspace_id: str
    resource: str
    message: str
    resolved: bool

    @property
    def text(self) -> str:
        """The notice as a chat message."""
        return f"[gateway] {'RESOLVED' if self.resolved else 'FIRING'} {self.rule}: {self.message}"


class ConditionTracker:
    """Since when each condition has held, and which ones fired, as this instance saw them."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._since: dict[IncidentKey, float] = {}
        self._fired: set[IncidentKey] = set()

    def observe(self, holding: Iterable[IncidentKey], undetermined: Iterable[IncidentKey]) -> None:
        """Start the clock of new conditions; forget the ones that stopped holding."""
        now = self._clock.monotonic()
        current = set(holding)
        kept = current | set(undetermined)
        self._since = {key: since for key, since in self._since.items() if key in kept}
        self._fired &= kept
        for key in current:
            self._since.setdefault(key, now)

    def lasted_s(self, key: IncidentKey) -> float:
        """How long the condition has held (0 when it does not)."""
        since = self._since.get(key)
        return 0.0 if since is None else self._clock.monotonic() - since

    def fired(self, key: IncidentKey) -> bool:
        """Whether an incident is open for the condition, or was until a person closed it."""
        return key in self._fired

    def mark_fired(self, keys: Iterable[IncidentKey]) -> None:
        """Record incidents now open."""
        self._fired.update(keys)

    def forget(self, keys: Iterable[IncidentKey]) -> None:
        """Drop conditions that cleared within a pass."""
        for key in keys:
            self._since.pop(key, None)
            self._fired.discard(key)


class AlertRules:
    """Evaluates the rules every `thresholds.interval_s` (`start`/`stop`), or once (`evaluate`)."""

    def __init__(
        self,
        store: Store,
        thresholds: AlertThresholds,
        timings: LeaseTimings,
        *,
        lags: LagProbe | None = None,
        notifier: Notifier | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._thresholds = thresholds
        self._timings = timings
        self._lags = lags
        self._notifier = notifier
        self._clock = clock if clock is not None else SystemClock()
        self._tracker = ConditionTracker(self._clock)
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, store: Store, lags: LagProbe) -> AlertRules:
        """The rules as the settings configure them, with the webhook if one is set."""
        notifier = None
        if settings.alert_webhook_url:
            notifier = WebhookNotifier(
                settings.alert_webhook_url,
                settings.alert_webhook_timeout_s,
                NetGuard.from_settings(settings),
            )
        return cls(
            store,
            AlertThresholds.from_settings(settings),
            LeaseTimings.from_settings(settings),
            lags=lags,
            notifier=notifier,
        )

    async def start(self) -> None:
        """Evaluate every `interval_s` from now on, until `stop`."""
        if self._task is not None:
            raise RuntimeError("the alert rules were already started")
        self._task = asyncio.create_task(self._run(), name="alert-rules")

    async def stop(self) -> None:
        """Stop evaluating (a pass in progress is abandoned, its transaction rolled back)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def evaluate(self) -> list[Notice]:
        """One pass: observe, open and close incidents, then send their notices."""
        seen = await self._observe()
        signals = [
            JobFailureSignal.from_row(row)
            for row in await fetch_all(self._store, "list_job_failure_signals")
        ]
        self._tracker.observe(
            [condition.key for condition in seen.conditions] + [s.key for s in signals],
            seen.undetermined,
        )
        async with self._store.transaction() as tx:
            await tx.execute("lock_alert_rules")
            open_rows = {
                (row["alert_type"], row["workspace_id"], row["resource"]): row
                for row in await tx.fetch_all("list_open_rule_alerts")
            }
            holding = {condition.key: condition for condition in seen.conditions}
            recovered: list[IncidentKey] = []
            for signal in signals:
                if signal.recovered and (
                    signal.key in open_rows or self._tracker.fired(signal.key)
                ):
                    await _resolve_job_failures(tx, signal)
                    recovered.append(signal.key)
                else:
                    holding[signal.key] = signal.condition()
            notices = await self._close_cleared(tx, open_rows, holding, seen.undetermined)
            opened, fired = await self._open_due(tx, open_rows, holding)
        # Only what the transaction committed is remembered and announced.
        self._tracker.mark_fired(fired)
        self._tracker.forget(recovered)
        await self._announce([*notices, *opened])
        return [*notices, *opened]

    async def _close_cleared(
        self,
        tx: Transaction,
        open_rows: Mapping[IncidentKey, Row],
        holding: Mapping[IncidentKey, Condition],
        undetermined: set[IncidentKey],
    ) -> list[Notice]:
        """Close the open incidents whose condition no longer holds."""
        notices: list[Notice] = []
        for key, row in open_rows.items():
            if key in holding or key in undetermined:
                continue
            if await tx.execute("close_rule_alert", id=row["id"]):
                notices.append(Notice(*key, message=row["message"], resolved=True))
        return notices

    async def _open_due(
        self,
        tx: Transaction,
        open_rows: Mapping[IncidentKey, Row],
        holding: Mapping[IncidentKey, Condition],
    ) -> tuple[list[Notice], list[IncidentKey]]:
        """Open an incident for each condition that lasted long enough and has none yet; the
        notices, and every incident now open."""
        notices: list[Notice] = []
        fired: list[IncidentKey] = []
        for key, condition in holding.items():
            if key in open_rows:  # opened by this instance or another one
                fired.append(key)
                continue
            lasting_s = self._thresholds.lasting_s(condition.rule)
            # An incident a person closed while its condition still holds stays closed.
            if self._tracker.fired(key) or self._tracker.lasted_s(key) < lasting_s:
                continue
            opened = await tx.fetch_one(
                "open_rule_alert",
                alert_type=condition.rule,
                message=condition.message,
                workspace_id=condition.workspace_id,
                resource=condition.resource,
            )
            if opened is not None:
                notices.append(Notice(*key, message=condition.message, resolved=False))
            fired.append(key)
        return notices, fired

    async def _observe(self) -> Observation:
        seen = Observation()
        for workspace in await fetch_all(self._store, "list_workspaces"):
            health = await read_trigger_health(
                self._store,
                workspace["id"],
                self._timings,
                quarantine_window_s=self._thresholds.quarantine_window_s,
            )
            if self._lags is not None and self._thresholds.measures_lag:
                health = await with_lags(health, self._lags)
            found = trigger_conditions(health, self._thresholds)
            seen.conditions.extend(found.conditions)
            seen.undetermined.update(found.undetermined)
        return seen

    async def _announce(self, notices: Sequence[Notice]) -> None:
        for notice in notices:
            extra: dict[str, Any] = {
                "action": "alert_resolved" if notice.resolved else "alert_raised",
                "rule": notice.rule,
                "workspace": notice.workspace_id,
                "resource": notice.resource,
            }
            if notice.resolved:
                logger.info("alert resolved: %s", notice.message, extra=extra)
            else:
                logger.warning("alert: %s", notice.message, extra=extra)
            if self._notifier is not None:
                await self._notifier.notify(notice.text)

    async def _run(self) -> None:
        while True:
            await self._clock.sleep(self._thresholds.interval_s)
            try:
                await self.evaluate()
            except Exception as exc:
                raise_if_cancelling()
                logger.warning(
                    "alert rules pass failed, retrying in %.2fs: %s",
                    self._thresholds.interval_s,
                    f"{type(exc).__name__}: {exc}",
                    extra={"action": "alert_rules_failed"},
                )


async def _resolve_job_failures(tx: Transaction, signal: JobFailureSignal) -> None:
    """Close the script's `job_failed` alerts a later success covers."""
    await tx.execute(
        "resolve_job_failed_alerts",
        workspace_id=signal.workspace_id,
        resource=signal.script_path,
        last_id=signal.last_id,
    )

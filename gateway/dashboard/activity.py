"""What the triggers did lately, from their jobs: events per minute over the last hour and the
time of each trigger's newest job, drawn as a small bar chart.

Every job a trigger creates for an event is one top-level job carrying the trigger's kind and
path, so job counts are event counts (retries are child jobs and are not counted twice).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

WINDOW_MINUTES: Final = 60
CHART_WIDTH: Final = 120
CHART_HEIGHT: Final = 24
_BAR_PITCH: Final = CHART_WIDTH / WINDOW_MINUTES

TriggerKey = tuple[str, str]
"""A trigger as its jobs name it: (kind, path)."""


@dataclass(frozen=True, slots=True)
class Bar:
    """One minute of the chart, in the SVG's coordinates (y grows downwards)."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class EventRate:
    """Jobs per minute over the last hour, oldest minute first."""

    per_minute: tuple[int, ...]

    @property
    def total(self) -> int:
        """Jobs in the whole window."""
        return sum(self.per_minute)

    @property
    def peak(self) -> int:
        """The busiest minute's count."""
        return max(self.per_minute, default=0)

    def bars(self) -> list[Bar]:
        """The non-empty minutes as bars, scaled so the busiest one fills the chart."""
        if self.peak == 0:
            return []
        scale = (CHART_HEIGHT - 1) / self.peak
        return [
            Bar(
                x=round(index * _BAR_PITCH, 2),
                y=round(CHART_HEIGHT - max(count * scale, 1.0), 2),
                width=round(_BAR_PITCH * 0.8, 2),
                height=round(max(count * scale, 1.0), 2),
            )
            for index, count in enumerate(self.per_minute)
            if count
        ]


IDLE: Final = EventRate((0,) * WINDOW_MINUTES)


@dataclass(frozen=True, slots=True)
class JobActivity:
    """Per trigger: its event rate and newest job time, from one list of recent jobs.

    `covered_since` is set when the list did not reach back a whole hour (it was cut at its
    page size): the rates then count only the jobs created since that time.
    """

    rates: Mapping[TriggerKey, EventRate] = field(default_factory=dict)
    last_event: Mapping[TriggerKey, datetime] = field(default_factory=dict)
    covered_since: datetime | None = None

    def rate_of(self, key: TriggerKey) -> EventRate:
        """The trigger's rate; no jobs in the window is an idle chart."""
        return self.rates.get(key, IDLE)


def job_activity(jobs: Iterable[Mapping[str, Any]], now: datetime, cut: bool) -> JobActivity:
    """Bucket `jobs` (job JSON, newest first, as `list_jobs` returns them) by trigger and minute.

    `cut` says the list was as long as its page allowed, so older jobs of the hour may be missing.
    """
    start = now - timedelta(minutes=WINDOW_MINUTES)
    counts: dict[TriggerKey, list[int]] = {}
    last_event: dict[TriggerKey, datetime] = {}
    oldest: datetime | None = None
    for job in jobs:
        created = datetime.fromisoformat(job["created_at"])
        oldest = created
        if job["trigger_kind"] is None or job["trigger"] is None:
            continue
        key = (job["trigger_kind"], job["trigger"])
        last_event.setdefault(key, created)
        if created < start:
            continue
        minute = min(int((created - start).total_seconds() // 60), WINDOW_MINUTES - 1)
        counts.setdefault(key, [0] * WINDOW_MINUTES)[minute] += 1
    covered_since = oldest if cut and oldest is not None and oldest > start else None
    return JobActivity(
        rates={key: EventRate(tuple(minutes)) for key, minutes in counts.items()},
        last_event=last_event,
        covered_since=covered_since,
    )


def age_text(then: datetime | None, now: datetime) -> str:
    """`then` as a short age (`42 s ago`, `5 min ago`, `3 h ago`, `2 d ago`); `never` for None."""
    if then is None:
        return "never"
    seconds = max(int((now - then).total_seconds()), 0)
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 120 * 60:
        return f"{seconds // 60} min ago"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"

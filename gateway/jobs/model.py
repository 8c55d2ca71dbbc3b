"""The values that describe jobs as the queue and the executor exchange them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from gateway.executor.outcome import error_result
from gateway.jobs.retry import RetryPolicy

RUNNABLE_KINDS = ("script", "preview")
TRIGGER_KINDS = (
    "webhook", "http", "websocket", "kafka", "email", "nats", "schedule", "app", "ui",
    "postgres", "sqs", "gcp", "mqtt", "nextcloud",
)  # fmt: skip


class JobStatus(StrEnum):
    """How a job ended (Windmill's `job_status`)."""

    SUCCESS = "success"
    FAILURE = "failure"
    CANCELED = "canceled"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class ErrorHandler:
    """A script that runs once when a job's attempts are exhausted."""

    path: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to enqueue: a script by path or hash, inline code, or a flow (`flow_value`)."""

    workspace_id: str
    args: Mapping[str, Any]
    permissioned_as: str
    permissioned_as_email: str
    created_by: str
    runnable_path: str | None = None
    script_hash: int | None = None
    raw_code: str | None = None
    language: str | None = None
    trigger: str | None = None
    trigger_kind: str | None = None
    priority: int | None = None
    timeout: int | None = None
    delay_s: float = 0.0
    retry: RetryPolicy | None = None
    error_handler: ErrorHandler | None = None
    dedup_key: str | None = None
    apply_preprocessor: bool = False
    suspended: bool = False
    labels: tuple[str, ...] = ()
    flow_value: Mapping[str, Any] | None = None
    """Set for a flow run: the flow's OpenFlow value (`runnable_path` is then the flow's path)."""
    flow_version: int | None = None
    """The `flow_version` id a flow run was started from."""


@dataclass(frozen=True, slots=True)
class Enqueued:
    """The id a new job got, or the id an earlier job with the same dedup key got."""

    job_id: UUID
    created: bool


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job this worker holds and must run."""

    id: UUID
    workspace_id: str
    kind: str
    runnable_path: str | None
    runnable_id: int | None
    language: str | None
    raw_code: str | None
    args: Mapping[str, Any]
    timeout: int | None
    preprocessed: bool | None
    parent_job: UUID | None
    flow_step_id: str | None
    trigger: str | None
    trigger_kind: str | None
    created_by: str
    permissioned_as: str
    permissioned_as_email: str
    started_at: datetime
    root_job: UUID | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ClaimedJob:
        """Build from a `get_claimed_jobs` row."""
        return cls(
            id=row["id"],
            workspace_id=row["workspace_id"],
            kind=row["kind"],
            runnable_path=row["runnable_path"],
            runnable_id=row["runnable_id"],
            language=row["script_lang"],
            raw_code=row["raw_code"],
            args=row["args"] or {},
            timeout=row["timeout"],
            preprocessed=row["preprocessed"],
            parent_job=row["parent_job"],
            flow_step_id=row["flow_step_id"],
            trigger=row["trigger"],
            trigger_kind=row["trigger_kind"],
            created_by=row["created_by"],
            permissioned_as=row["permissioned_as"],
            permissioned_as_email=row["permissioned_as_email"],
            started_at=row["started_at"],
            root_job=row["root_job"],
        )


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What became of a job, ready to be written to `v2_job_completed`."""

    status: JobStatus
    result: Any
    started_at: datetime | None
    duration_ms: int
    worker: str | None = None
    memory_peak_kb: int | None = None
    canceled_by: str | None = None
    canceled_reason: str | None = None


def canceled_outcome(canceled_by: str, reason: str | None, **timing: Any) -> JobOutcome:
    """The outcome recorded for a canceled job."""
    message = (
        f"Job canceled: {reason} by {canceled_by}" if reason else f"Job canceled by {canceled_by}"
    )
    return JobOutcome(
        status=JobStatus.CANCELED,
        result=error_result("Canceled", message),
        started_at=timing.get("started_at"),
        duration_ms=timing.get("duration_ms", 0),
        worker=timing.get("worker"),
        canceled_by=canceled_by,
        canceled_reason=reason,
    )

"""The runnable a trigger targets, and the job each of its events becomes.

`RunnableShapes` resolves a trigger's script path to its latest version and that version's
`RunnableShape` (main's schema, whether it has a preprocessor and the preprocessor's parameters),
cached by script hash: a new deployment is a new hash, so an entry never goes stale.
`TriggerTarget` holds what a trigger row says about its jobs (identity, retry, error handler,
suspended mode) and builds them; `prepare_jobs` does so for a batch of events, setting aside
every event that cannot become a job together with the reason.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.errors import NotFound
from gateway.executor.signature import ScriptSyntaxError, infer_schema
from gateway.jobs.model import ErrorHandler, NewJob
from gateway.jobs.retry import RetryPolicy, RetryPolicyError
from gateway.listeners.lease import TriggerRef
from gateway.scripts import Script, latest_script
from gateway.store import Transaction
from gateway.triggers.args import ArgsError, RunnableShape, build_args
from gateway.triggers.event import Event

FLOW_TARGETS_UNSUPPORTED = "flow targets are not supported yet"
_CREATED_BY_PREFIXES: Mapping[str, str] = {"websocket": "ws"}


@dataclass(frozen=True, slots=True)
class Runnable:
    """The script version a trigger's events run, and the shape their args take."""

    script: Script
    shape: RunnableShape


def shape_of_script(script: Script) -> RunnableShape:
    """The arg-relevant shape of one script version.

    The preprocessor's parameters are not stored, so they are read again from the source; a
    language whose signature is not parsed gives none, which selects the current arg format.
    """
    params: list[str] = []
    if script.has_preprocessor and script.language == "python3":
        try:
            params = infer_schema(script.language, script.content).preprocessor_params
        except ScriptSyntaxError:
            params = []
    return RunnableShape.from_schema(
        script.schema, has_preprocessor=script.has_preprocessor, preprocessor_params=params
    )


class RunnableShapes:
    """Latest script versions with their shapes, the shapes kept per (workspace, hash)."""

    def __init__(self, capacity: int = 1000) -> None:
        self._capacity = capacity
        self._shapes: OrderedDict[tuple[str, int], RunnableShape] = OrderedDict()

    async def resolve(self, tx: Transaction, workspace_id: str, path: str) -> Runnable:
        """The latest version of the script at `path`, or NotFound."""
        script = await latest_script(tx, workspace_id, path)
        return Runnable(script, self.shape_of(script))

    def shape_of(self, script: Script) -> RunnableShape:
        """The shape of `script`, computed once per version."""
        key = (script.workspace_id, script.hash)
        shape = self._shapes.get(key)
        if shape is None:
            shape = shape_of_script(script)
            self._shapes[key] = shape
            if len(self._shapes) > self._capacity:
                self._shapes.popitem(last=False)
        else:
            self._shapes.move_to_end(key)
        return shape


@dataclass(frozen=True, slots=True)
class TriggerTarget:
    """What a trigger row says about the jobs its events become."""

    trigger: TriggerRef
    script_path: str
    is_flow: bool
    permissioned_as: str
    email: str
    retry: RetryPolicy | None
    error_handler: ErrorHandler | None
    suspended: bool

    @classmethod
    def from_row(cls, trigger: TriggerRef, row: Mapping[str, object]) -> TriggerTarget:
        """Read a trigger row; RetryPolicyError when its stored `retry` is not a valid policy."""
        handler_path = row.get("error_handler_path")
        handler_args = row.get("error_handler_args")
        return cls(
            trigger=trigger,
            script_path=str(row["script_path"]),
            is_flow=bool(row["is_flow"]),
            permissioned_as=str(row.get("permissioned_as") or f"u/{row['edited_by']}"),
            email=str(row["email"]),
            retry=RetryPolicy.parse(row.get("retry")),
            error_handler=(
                ErrorHandler(
                    str(handler_path).removeprefix("script/"),
                    dict(handler_args) if isinstance(handler_args, Mapping) else {},
                )
                if handler_path
                else None
            ),
            suspended=row["mode"] == "suspended",
        )

    @property
    def created_by(self) -> str:
        """The display name jobs of this trigger are created by (`kafka-u/ops/orders`)."""
        kind = self.trigger.kind
        return f"{_CREATED_BY_PREFIXES.get(kind, kind)}-{self.trigger.path}"

    def new_job(self, event: Event, runnable: Runnable) -> NewJob:
        """The job `event` becomes; ArgsError when its args cannot be built."""
        args = build_args(event, runnable.shape)
        try:
            json.dumps(args, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ArgsError(f"the job args are not JSON: {exc}") from exc
        trigger = self.trigger
        return NewJob(
            workspace_id=trigger.workspace_id,
            args=args,
            permissioned_as=self.permissioned_as,
            permissioned_as_email=self.email,
            created_by=self.created_by,
            runnable_path=runnable.script.path,
            # Pinned: the args were shaped for this version, not for one deployed meanwhile.
            script_hash=runnable.script.hash,
            trigger=trigger.path,
            trigger_kind=trigger.kind,
            retry=self.retry,
            error_handler=self.error_handler,
            dedup_key=None if event.dedup_key is None else job_dedup_key(trigger, event.dedup_key),
            apply_preprocessor=runnable.shape.has_preprocessor,
            suspended=self.suspended,
        )


def job_dedup_key(trigger: TriggerRef, event_key: str) -> str:
    """The dedup key of the job an event of `trigger` becomes."""
    return f"{trigger.kind}:{trigger.path}:{event_key}"


@dataclass(frozen=True, slots=True)
class Rejected:
    """An event that cannot become a job, and why."""

    event: Event
    reason: str


@dataclass(frozen=True, slots=True)
class PreparedJobs:
    """A batch's jobs, in event order, and the events set aside."""

    jobs: tuple[NewJob, ...]
    rejected: tuple[Rejected, ...]
    scripts: tuple[Script, ...] = ()
    """The script versions the jobs run, already read (so the enqueue need not read them)."""


async def prepare_jobs(
    tx: Transaction,
    trigger: TriggerRef,
    row: Mapping[str, object],
    events: Sequence[Event],
    shapes: RunnableShapes,
) -> PreparedJobs:
    """The jobs `events` of the trigger with `row` become; nothing is written."""

    def reject_all(reason: str) -> PreparedJobs:
        return PreparedJobs((), tuple(Rejected(event, reason) for event in events))

    try:
        target = TriggerTarget.from_row(trigger, row)
    except RetryPolicyError as exc:
        return reject_all(f"the trigger's retry policy is invalid: {exc}")
    if target.is_flow:
        return reject_all(FLOW_TARGETS_UNSUPPORTED)
    try:
        runnable = await shapes.resolve(tx, trigger.workspace_id, target.script_path)
    except NotFound as exc:
        return reject_all(str(exc))
    jobs: list[NewJob] = []
    rejected: list[Rejected] = []
    for event in events:
        try:
            jobs.append(target.new_job(event, runnable))
        except Exception as exc:  # one bad event must not hold back the rest of its batch
            rejected.append(Rejected(event, _describe(exc)))
    return PreparedJobs(tuple(jobs), tuple(rejected), (runnable.script,))


def _describe(exc: BaseException) -> str:
    """A reason to record: the message of an expected error, the type too for any other."""
    if isinstance(exc, ArgsError | NotFound | RetryPolicyError):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

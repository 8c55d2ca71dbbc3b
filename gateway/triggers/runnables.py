"""The runnable a trigger targets, and the job each of its events becomes.

`RunnableShapes` resolves a trigger's script path to its latest version and that version's
`RunnableShape` (main's schema, whether it has a preprocessor and the preprocessor's parameters),
cached by script hash: a new deployment is a new hash, so an entry never goes stale. A flow path
resolves to its latest flow version (`FlowRunnable`), cached by version id for the same reason.
`TriggerTarget` holds what a trigger row says about its jobs (identity, retry, error handler,
suspended mode) and builds them; `prepare_jobs` does so for a batch of events (a `JobBatch`: the
job they share, and each one's args), setting aside every event that cannot become a job together
with the reason. `prepare_jobs_ahead` builds them before the transaction, for the version the
trigger's last batch ran: `prepare_jobs` takes that work when the version is still the latest,
so that the transaction (the single writer's lock on SQLite) is not held while args are built.
A flow target ignores the trigger's retry and error handler, as Windmill does: the flow's own
modules say how to retry.
"""

from __future__ import annotations

import ast
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.errors import NotFound
from gateway.executor.signature import ScriptSyntaxError, infer_schema
from gateway.flow_versions import FlowVersion, flow_version, latest_flow_version_id
from gateway.jobs.enqueue import JobBatch
from gateway.jobs.model import ErrorHandler, NewJob
from gateway.jobs.retry import RetryPolicy, RetryPolicyError
from gateway.listeners.lease import TriggerRef
from gateway.scripts import Script, latest_script
from gateway.store import Transaction
from gateway.store.storable import holds_unstorable_text
from gateway.triggers.args import ArgsError, RunnableShape, build_args
from gateway.triggers.event import Event

_CREATED_BY_PREFIXES: Mapping[str, str] = {"websocket": "ws"}
_ARGS_JSON = json.JSONEncoder(allow_nan=False)


@dataclass(frozen=True, slots=True)
class Runnable:
    """The script version a trigger's events run, and the shape their args take."""

    script: Script
    shape: RunnableShape

    @property
    def path(self) -> str:
        """The script's path."""
        return self.script.path

    @property
    def script_hash(self) -> int | None:
        """The version jobs are pinned to."""
        return self.script.hash

    @property
    def flow_value(self) -> Mapping[str, Any] | None:
        """None: a script is not a flow."""
        return None

    @property
    def flow_version(self) -> int | None:
        """None: a script is not a flow."""
        return None


@dataclass(frozen=True, slots=True)
class FlowRunnable:
    """The flow version a trigger's events run, and the shape their args take."""

    flow: FlowVersion
    shape: RunnableShape

    @property
    def path(self) -> str:
        """The flow's path."""
        return self.flow.path

    @property
    def script_hash(self) -> int | None:
        """None: a flow is not a script version."""
        return None

    @property
    def flow_value(self) -> Mapping[str, Any]:
        """The definition jobs run (pinned: the args were shaped for this version)."""
        return self.flow.value

    @property
    def flow_version(self) -> int:
        """The id of the version jobs run."""
        return self.flow.version


def shape_of_flow(flow: FlowVersion) -> RunnableShape:
    """The arg-relevant shape of one flow version: its input schema and its preprocessor module
    (whose parameters are read when it is inline python3)."""
    module = flow.value.get("preprocessor_module")
    step = module.get("value") if isinstance(module, Mapping) else None
    params: list[str] = []
    if isinstance(step, Mapping) and step.get("language") == "python3":
        params = _preprocessor_params(str(step.get("content", "")))
    return RunnableShape.from_schema(
        flow.schema, has_preprocessor=module is not None, preprocessor_params=params
    )


def _preprocessor_params(content: str) -> list[str]:
    """The parameter names of a preprocessor step's `preprocessor` function (its `main` when it
    has none); none when the source does not parse, which selects the current arg format."""
    try:
        tree = ast.parse(content)
    except SyntaxError:
        return []
    functions = {
        node.name: node.args
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    args = functions.get("preprocessor") or functions.get("main")
    if args is None:
        return []
    return [arg.arg for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs)]


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
        self._flows: OrderedDict[tuple[str, int], FlowRunnable] = OrderedDict()
        self._resolved: OrderedDict[tuple[str, str, bool], Runnable | FlowRunnable] = OrderedDict()

    async def resolve(self, tx: Transaction, workspace_id: str, path: str) -> Runnable:
        """The latest version of the script at `path`, or NotFound."""
        script = await latest_script(tx, workspace_id, path)
        return Runnable(script, self.shape_of(script))

    async def resolve_flow(self, tx: Transaction, workspace_id: str, path: str) -> FlowRunnable:
        """The latest version of the flow at `path`, read once per version; or NotFound."""
        key = (workspace_id, await latest_flow_version_id(tx, workspace_id, path))
        runnable = self._flows.get(key)
        if runnable is None:
            flow = await flow_version(tx, workspace_id, key[1])
            runnable = self._flows[key] = FlowRunnable(flow, shape_of_flow(flow))
            if len(self._flows) > self._capacity:
                self._flows.popitem(last=False)
        else:
            self._flows.move_to_end(key)
        return runnable

    async def resolve_target(
        self, tx: Transaction, workspace_id: str, path: str, *, is_flow: bool
    ) -> Runnable | FlowRunnable:
        """The latest version of the flow or script at `path`, or NotFound."""
        key = (workspace_id, path, is_flow)
        try:
            if is_flow:
                runnable: Runnable | FlowRunnable = await self.resolve_flow(tx, workspace_id, path)
            else:
                runnable = await self.resolve(tx, workspace_id, path)
        except NotFound:
            self._resolved.pop(key, None)
            raise
        self._resolved[key] = runnable
        self._resolved.move_to_end(key)
        if len(self._resolved) > self._capacity:
            self._resolved.popitem(last=False)
        return runnable

    def last_resolved(
        self, workspace_id: str, path: str, *, is_flow: bool
    ) -> Runnable | FlowRunnable | None:
        """What `resolve_target` last found at `path` (maybe not the latest version any more)."""
        return self._resolved.get((workspace_id, path, is_flow))

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

    def job_template(self, runnable: Runnable | FlowRunnable) -> NewJob:
        """What every job of this trigger running `runnable` is, whatever its event: no args
        and no dedup key yet."""
        trigger = self.trigger
        return NewJob(
            workspace_id=trigger.workspace_id,
            args={},
            permissioned_as=self.permissioned_as,
            permissioned_as_email=self.email,
            created_by=self.created_by,
            runnable_path=runnable.path,
            # Pinned: the args were shaped for this version, not for one deployed meanwhile.
            script_hash=runnable.script_hash,
            flow_value=runnable.flow_value,
            flow_version=runnable.flow_version,
            trigger=trigger.path,
            trigger_kind=trigger.kind,
            retry=None if self.is_flow else self.retry,
            error_handler=None if self.is_flow else self.error_handler,
            apply_preprocessor=runnable.shape.has_preprocessor,
            suspended=self.suspended,
        )


def job_args(event: Event, runnable: Runnable | FlowRunnable) -> tuple[dict[str, Any], str]:
    """The args of the job `event` becomes, and their JSON text; ArgsError when they cannot be
    built or stored."""
    args = build_args(event, runnable.shape)
    try:
        text = _ARGS_JSON.encode(args)
    except (TypeError, ValueError) as exc:
        raise ArgsError(f"the job args are not JSON: {exc}") from exc
    # Only these escapes can stand for what PostgreSQL cannot store: walk the args only then.
    if ("\\u0000" in text or "\\ud" in text) and holds_unstorable_text(args):
        raise ArgsError("the job args hold a NUL character or an unpaired surrogate")
    return args, text


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
    """A batch's jobs, in event order (None when the trigger's events cannot become jobs at
    all), and the events set aside."""

    batch: JobBatch | None
    rejected: tuple[Rejected, ...]
    runnable: Runnable | FlowRunnable | None = None
    """The version the jobs run."""

    @property
    def scripts(self) -> tuple[Script, ...]:
        """The script versions the jobs run, already read (so the enqueue need not read them)."""
        return (self.runnable.script,) if isinstance(self.runnable, Runnable) else ()

    @property
    def jobs(self) -> tuple[NewJob, ...]:
        """The jobs one by one."""
        return () if self.batch is None else self.batch.jobs


async def prepare_jobs(
    tx: Transaction,
    trigger: TriggerRef,
    row: Mapping[str, object],
    events: Sequence[Event],
    shapes: RunnableShapes,
    *,
    ahead: PreparedJobs | None = None,
) -> PreparedJobs:
    """The jobs `events` of the trigger with `row` become; nothing is written.

    `ahead` is what `prepare_jobs_ahead` built from the same arguments: taken as it is when it
    was built for the version found now.
    """

    def reject_all(reason: str) -> PreparedJobs:
        return PreparedJobs(None, tuple(Rejected(event, reason) for event in events))

    try:
        target = TriggerTarget.from_row(trigger, row)
    except RetryPolicyError as exc:
        return reject_all(f"the trigger's retry policy is invalid: {exc}")
    try:
        runnable = await shapes.resolve_target(
            tx, trigger.workspace_id, target.script_path, is_flow=target.is_flow
        )
    except NotFound as exc:
        return reject_all(str(exc))
    if ahead is not None and ahead.runnable == runnable:
        return ahead
    return build_jobs(target, runnable, events)


def prepare_jobs_ahead(
    trigger: TriggerRef, row: Mapping[str, object], events: Sequence[Event], shapes: RunnableShapes
) -> PreparedJobs | None:
    """The jobs `events` of the trigger with `row` become if its target is still the version
    `shapes` last found (for `prepare_jobs` to check); None when there is none to go by."""
    try:
        target = TriggerTarget.from_row(trigger, row)
    except RetryPolicyError:
        return None
    runnable = shapes.last_resolved(
        trigger.workspace_id, target.script_path, is_flow=target.is_flow
    )
    return None if runnable is None else build_jobs(target, runnable, events)


def build_jobs(
    target: TriggerTarget, runnable: Runnable | FlowRunnable, events: Sequence[Event]
) -> PreparedJobs:
    """The jobs `events` of `target` become with `runnable`, and those set aside (with why)."""
    key_prefix = job_dedup_key(target.trigger, "")
    args: list[dict[str, Any]] = []
    texts: list[str] = []
    keys: list[str | None] = []
    rejected: list[Rejected] = []
    for event in events:
        try:
            event_args, text = job_args(event, runnable)
        except Exception as exc:  # one bad event must not hold back the rest of its batch
            rejected.append(Rejected(event, _describe(exc)))
            continue
        args.append(event_args)
        texts.append(text)
        keys.append(None if event.dedup_key is None else key_prefix + event.dedup_key)
    batch = JobBatch(target.job_template(runnable), args, texts, keys)
    return PreparedJobs(batch, tuple(rejected), runnable)


def _describe(exc: BaseException) -> str:
    """A reason to record: the message of an expected error, the type too for any other."""
    if isinstance(exc, ArgsError | NotFound | RetryPolicyError):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

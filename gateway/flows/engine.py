"""The flow engine: advances flow jobs in the transactions that start them and end their steps.

A flow job never runs as a process. Its `v2_job_status.flow_status` (Windmill's shape) says
which module is at work; each module that needs work has child jobs: a script or inline script
job, or a child flow job (a sub-flow, one for-loop iteration, one branch). When a child ends,
`advance_flow` (called by `complete_job` in the same transaction) records its result and starts
what comes next, so every transition happens exactly once. Modules that need no job (identity,
an empty loop, a branch without modules) are passed inline.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from gateway.errors import InvalidInput, NotFound
from gateway.executor.outcome import error_result
from gateway.flow_versions import latest_flow_version
from gateway.flows import expressions
from gateway.flows.children import identity_of, insert_node, insert_step
from gateway.flows.expressions import ExpressionError
from gateway.flows.model import Flow, FlowModule, Transform, parse_flow
from gateway.jobs.cancel import cancel_job
from gateway.jobs.complete import complete_job, error_handler_args
from gateway.jobs.model import JobOutcome, JobStatus
from gateway.scripts import Script, latest_script, parse_hash, script_by_hash
from gateway.store import Json, Transaction
from gateway.store.values import utc_now

logger = logging.getLogger(__name__)

FAILURE_STEP = "failure"
PREPROCESSOR_STEP = "preprocessor"
_CONTAINERS = ("forloopflow", "branchall")


@dataclass(frozen=True, slots=True)
class Ended:
    """How a flow job ends: its status and result."""

    status: JobStatus
    result: Any


class StepError(Exception):
    """A step could not be started (a bad expression, a missing script); fails the module."""


def new_status(flow: Flow, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The flow_status of a flow job that has not started any module yet."""
    status: dict[str, Any] = {
        "step": 0,
        "modules": [{"id": m.id, "type": "WaitingForPriorSteps"} for m in flow.modules],
        "retry": {"fail_count": 0, "failed_jobs": []},
    }
    if flow.failure_module is not None:
        status["failure_module"] = {"id": FAILURE_STEP, "type": "WaitingForPriorSteps"}
    if flow.preprocessor_module is not None:
        status["preprocessor_module"] = {"id": PREPROCESSOR_STEP, "type": "WaitingForPriorSteps"}
    if context:
        status["context"] = dict(context)
    return status


class FlowRun:
    """One flow job loaded (and locked) in a transaction, with the means to move it on."""

    def __init__(self, tx: Transaction, row: dict[str, Any], flow: Flow) -> None:
        self.tx = tx
        self.row = row
        self.flow = flow
        self.status: dict[str, Any] = row["flow_status"]

    @classmethod
    async def load(cls, tx: Transaction, flow_id: UUID) -> FlowRun | None:
        """The running flow job `flow_id`, locked; None once it has completed."""
        row = await tx.fetch_one("lock_flow_job", id=flow_id)
        if row is None:
            return None
        return cls(tx, dict(row), parse_flow(row["raw_flow"]))

    @property
    def id(self) -> UUID:
        """The flow job's id."""
        value: UUID = self.row["id"]
        return value

    # -- starting --------------------------------------------------------------------------

    async def begin(self, preprocess: bool) -> None:
        """Start the flow: its preprocessor on the trigger event, or its first module."""
        module = self.flow.preprocessor_module
        if preprocess and module is not None:
            try:
                # The preprocessor takes the trigger's arguments as they came.
                args = {**self.flow_input, **self._args_of(module, self._scope())}
                job_id = await self._queue_job(
                    module, args, step_id=PREPROCESSOR_STEP, step=-1, delay_s=0.0
                )
            except StepError as error:
                await self._conclude(self._fail_now(PREPROCESSOR_STEP, str(error)))
                return
            self.status["preprocessor_module"].update(type="InProgress", job=str(job_id))
            await self._save()
            return
        await self._conclude(await self._run_from(0, 0.0))

    # -- a child ended -----------------------------------------------------------------------

    async def child_ended(self, child_id: UUID, step_id: str | None, outcome: JobOutcome) -> None:
        """Record the end of child job `child_id` and start what comes next."""
        if step_id == FAILURE_STEP:
            await self._failure_module_ended(child_id, outcome)
            return
        if step_id == PREPROCESSOR_STEP:
            await self._preprocessor_ended(child_id, outcome)
            return
        index = self.status.get("step", 0)
        modules = self.status["modules"]
        if not (0 <= index < len(modules)) or modules[index]["id"] != step_id:
            return  # a late child of a module that already ended (e.g. canceled siblings)
        entry = modules[index]
        module = self.flow.modules[index]
        if entry["type"] not in ("InProgress", "WaitingForExecutor"):
            return
        if module.type in _CONTAINERS:
            ended = await self._container_child_ended(index, module, child_id, outcome)
        elif entry.get("job") != str(child_id):
            return
        else:
            ended = await self._module_ended(index, outcome)
        await self._conclude(ended)

    async def _module_ended(self, index: int, outcome: JobOutcome) -> Ended | None:
        if _succeeded(outcome.status):
            return await self._module_succeeded(index, outcome.result)
        if outcome.status is JobStatus.CANCELED:
            self.status["modules"][index]["type"] = "Failure"
            return Ended(JobStatus.CANCELED, outcome.result)
        return await self._module_failed(index, outcome.result)

    async def _module_succeeded(self, index: int, result: Any) -> Ended | None:
        module = self.flow.modules[index]
        entry = self.status["modules"][index]
        entry.update(type="Success", result=result)
        self.status["retry"]["fail_count"] = 0  # failed_jobs keeps every failed attempt
        # What runs after a module sees its result as `result` and as `previous_result`.
        scope = {**self._scope(), "result": result, "previous_result": result}
        if module.stop_after_if is not None:
            try:
                stop = expressions.evaluate(module.stop_after_if.expr, scope)
            except ExpressionError as error:
                return await self._module_failed(
                    index, _expression_failure(module.id, module.stop_after_if.expr, error)
                )
            if stop:
                entry["stopped"] = True
                final = JobStatus.SKIPPED if module.stop_after_if.skip_if_stopped else None
                return Ended(final or JobStatus.SUCCESS, result)
        delay = 0.0
        if module.sleep is not None:
            try:
                delay = _seconds(_value_of(module.sleep, scope), module.id)
            except ExpressionError as error:
                message = _expression_message(f"{module.id}.sleep", module.sleep.expr or "", error)
                return await self._module_failed(index, error_result("ExpressionError", message))
            except StepError as error:
                return await self._module_failed(index, _failure(str(error)))
        return await self._run_from(index + 1, delay)

    async def _module_failed(self, index: int, error: Any) -> Ended | None:
        module = self.flow.modules[index]
        entry = self.status["modules"][index]
        retry_state = self.status["retry"]
        failed_before = int(retry_state["fail_count"])
        if entry.get("job"):
            retry_state["failed_jobs"].append(entry["job"])
        retry_state["fail_count"] = failed_before + 1
        entry["type"] = "Failure"  # late children of this attempt are ignored from now on
        await self._cancel_children()
        policy = module.retry
        if policy is not None and policy.should_retry(failed_before, error, self.flow_input):
            delay = policy.delay_for(failed_before, random.Random()) or 0.0
            logger.info(
                "step %s of flow %s failed (attempt %d), retrying in %.2fs",
                module.id,
                self.row["runnable_path"],
                failed_before + 1,
                delay,
                extra={"action": "flow_step_retry", "job": str(self.id)},
            )
            return await self._start_module(index, delay)
        return Ended(JobStatus.FAILURE, _with_step(error, module.id))

    # -- containers ------------------------------------------------------------------------

    async def _container_child_ended(
        self, index: int, module: FlowModule, child_id: UUID, outcome: JobOutcome
    ) -> Ended | None:
        entry = self.status["modules"][index]
        jobs: list[str] = entry["flow_jobs"]
        if str(child_id) not in jobs:
            return None
        position = jobs.index(str(child_id))
        entry["flow_jobs_success"][position] = _succeeded(outcome.status)
        if outcome.status is JobStatus.CANCELED:
            entry["type"] = "Failure"
            return Ended(JobStatus.CANCELED, outcome.result)
        if not _succeeded(outcome.status) and not self._may_skip(module, position):
            entry["job"] = str(child_id)
            return await self._module_failed(index, outcome.result)
        return await self._next_children(index, module)

    def _may_skip(self, module: FlowModule, position: int) -> bool:
        if module.type == "forloopflow":
            return module.skip_failures
        return module.branches[position].skip_failure

    async def _next_children(self, index: int, module: FlowModule) -> Ended | None:
        """Start children while the module's limit allows; its result once all have ended."""
        entry = self.status["modules"][index]
        total = _child_count(entry)
        limit = _in_flight_limit(module, total)
        while True:
            done = [s for s in entry["flow_jobs_success"] if s is not None]
            started = len(entry["flow_jobs"])
            if len(done) == total:
                results = await self._results_of(entry["flow_jobs"])
                return await self._module_succeeded(index, results)
            if started == total or started - len(done) >= limit:
                await self._save()
                return None
            try:
                node_id, ended = await self._start_node_for(index, module, started)
            except StepError as error:
                return await self._module_failed(index, _failure(str(error)))
            entry["flow_jobs"].append(str(node_id))
            entry["flow_jobs_success"].append(None)
            _advance_position(entry, module, started + 1)
            if ended is not None:
                entry["flow_jobs_success"][started] = _succeeded(ended.status)
                if ended.status is JobStatus.CANCELED:
                    return Ended(JobStatus.CANCELED, ended.result)
                if not _succeeded(ended.status) and not self._may_skip(module, started):
                    return await self._module_failed(index, ended.result)

    async def _start_node_for(
        self, index: int, module: FlowModule, position: int
    ) -> tuple[UUID, Ended | None]:
        raw_value = self.flow_value_of(index)
        if module.type == "forloopflow":
            entry = self.status["modules"][index]
            item = entry["iterator"]["itered"][position]
            args = {**self.flow_input, "iter": {"value": item, "index": position}}
            return await self._start_node(index, module.id, raw_value.get("modules", []), args)
        branch = raw_value.get("branches", [])[position]
        return await self._start_node(index, module.id, branch.get("modules", []), self.flow_input)

    async def _start_node(
        self,
        index: int,
        step_id: str,
        modules: Sequence[Any],
        args: Mapping[str, Any],
        *,
        value: Mapping[str, Any] | None = None,
        path: str | None = None,
        version: int | None = None,
    ) -> tuple[UUID, Ended | None]:
        """A child flow job running `modules` (or a whole flow `value`); ended at once or not."""
        node_value = dict(value) if value is not None else {"modules": list(modules)}
        try:
            node_flow = parse_flow(node_value)
        except InvalidInput as error:
            raise StepError(f"{step_id}: {error}") from error
        context = None
        if value is None:
            context = {"results": self.results(), "previous_result": self.previous_result()}
        status = new_status(node_flow, context)
        node_id = await insert_node(
            self.tx,
            self.row,
            step_id=step_id,
            step=index,
            value=node_value,
            args=args,
            status=status,
            path=path,
            version=version,
        )
        row = {
            **self.row,
            "id": node_id,
            "raw_flow": node_value,
            "args": dict(args),
            "parent_job": self.id,
            "root_job": self.row["root_job"] or self.id,
            "runnable_path": path or self.row["runnable_path"],
            "runnable_id": version if path else self.row["runnable_id"],
            "kind": "flow",
            "started_at": utc_now(),
            "flow_status": status,
        }
        node = FlowRun(self.tx, row, node_flow)
        ended = await node._run_from(0, 0.0)
        if ended is None:
            await node._save()
            return node_id, None
        if ended.status is JobStatus.FAILURE and await node._start_failure_module(ended.result):
            return node_id, None
        # The node ended without a job: complete it here, its parent (this run) takes it from here.
        await node._complete(ended, advance_parent=False)
        return node_id, ended

    # -- running modules -------------------------------------------------------------------

    async def _run_from(self, index: int, delay_s: float) -> Ended | None:
        """Start modules from `index` on; passes modules that need no job; the end or None."""
        self.status["step"] = index
        if index >= len(self.flow.modules):
            return Ended(JobStatus.SUCCESS, self.previous_result())
        return await self._start_module(index, delay_s)

    async def _start_module(self, index: int, delay_s: float) -> Ended | None:
        module = self.flow.modules[index]
        entry = self.status["modules"][index]
        kept = {"id": module.id}
        entry.clear()
        entry.update(kept)
        scope = self._scope()
        try:
            if module.type == "identity":
                return await self._module_succeeded(index, scope["previous_result"])
            if module.type in ("rawscript", "script"):
                job_id = await self._start_job(module, module.id, index, scope, delay_s=delay_s)
                entry.update(
                    type="WaitingForExecutor" if delay_s > 0 else "InProgress", job=str(job_id)
                )
                await self._save()
                return None
            if module.type == "flow":
                return await self._start_subflow(index, module, scope)
            if module.type == "branchone":
                return await self._start_branchone(index, module, scope)
            return await self._start_container(index, module, scope)
        except StepError as error:
            return await self._module_failed(index, _failure(str(error)))

    async def _start_job(
        self, module: FlowModule, step_id: str, index: int, scope: dict[str, Any], *, delay_s: float
    ) -> UUID:
        """Queue the job of a script module, its arguments from its input transforms."""
        if self.row["kind"] == "singlestepflow":
            args = dict(self.flow_input)  # the wrapped script takes the wrapper's arguments
        else:
            args = self._args_of(module, scope)
        return await self._queue_job(module, args, step_id=step_id, step=index, delay_s=delay_s)

    async def _queue_job(
        self, module: FlowModule, args: dict[str, Any], *, step_id: str, step: int, delay_s: float
    ) -> UUID:
        script = await self._script_of(module) if module.type == "script" else None
        fields: dict[str, Any] = {
            "runnable_path": script.path if script else self.row["runnable_path"]
        }
        if script is None:
            fields.update(raw_code=module.content, language=module.language)
        if self.row["kind"] == "singlestepflow" and step_id != FAILURE_STEP:
            fields.update(
                timeout=self.row["timeout"], apply_preprocessor=self.row["preprocessed"] is False
            )
        job = identity_of(self.row, args, **fields)
        return await insert_step(
            self.tx, self.row, step_id=step_id, step=step, job=job, script=script, delay_s=delay_s
        )

    async def _script_of(self, module: FlowModule) -> Script:
        workspace = self.row["workspace_id"]
        try:
            if module.hash is not None:
                return await script_by_hash(self.tx, workspace, parse_hash(module.hash))
            assert module.path is not None
            return await latest_script(self.tx, workspace, module.path)
        except (NotFound, ValueError) as error:
            raise StepError(f"{module.id}: {error}") from error

    async def _start_subflow(
        self, index: int, module: FlowModule, scope: dict[str, Any]
    ) -> Ended | None:
        assert module.path is not None
        try:
            found = await latest_flow_version(self.tx, self.row["workspace_id"], module.path)
        except NotFound as error:
            raise StepError(f"{module.id}: {error}") from error
        args = self._args_of(module, scope)
        started = await self._start_node(
            index, module.id, (), args, value=found.value, path=module.path, version=found.version
        )
        return await self._node_started(index, *started)

    async def _start_branchone(
        self, index: int, module: FlowModule, scope: dict[str, Any]
    ) -> Ended | None:
        entry = self.status["modules"][index]
        chosen: int | None = None
        for number, branch in enumerate(module.branches):
            assert branch.expr is not None
            try:
                if expressions.evaluate(branch.expr, scope):
                    chosen = number
                    break
            except ExpressionError as error:
                raise StepError(
                    _expression_message(f"{module.id}.branches[{number}]", branch.expr, error)
                ) from error
        raw_value = self.flow_value_of(index)
        if chosen is None:
            entry["branch_chosen"] = {"type": "default"}
            modules, raw_modules = module.default, raw_value.get("default", [])
        else:
            entry["branch_chosen"] = {"type": "branch", "branch": chosen}
            modules, raw_modules = (
                module.branches[chosen].modules,
                raw_value["branches"][chosen].get("modules", []),
            )
        if not modules:
            return await self._module_succeeded(index, scope["previous_result"])
        started = await self._start_node(index, module.id, raw_modules, self.flow_input)
        return await self._node_started(index, *started)

    async def _node_started(self, index: int, node_id: UUID, ended: Ended | None) -> Ended | None:
        """Module `index` runs in the child flow job `node_id` (which may have ended at once)."""
        self.status["modules"][index].update(type="InProgress", job=str(node_id))
        if ended is None:
            await self._save()
            return None
        outcome = JobOutcome(
            status=ended.status, result=ended.result, started_at=None, duration_ms=0
        )
        return await self._module_ended(index, outcome)

    async def _start_container(
        self, index: int, module: FlowModule, scope: dict[str, Any]
    ) -> Ended | None:
        entry = self.status["modules"][index]
        entry.update(type="InProgress", flow_jobs=[], flow_jobs_success=[])
        if module.type == "forloopflow":
            assert module.iterator is not None
            try:
                items = _value_of(module.iterator, scope)
            except ExpressionError as error:
                raise StepError(
                    _expression_message(f"{module.id}.iterator", module.iterator.expr or "", error)
                ) from error
            if not isinstance(items, list):
                raise StepError(
                    f"{module.id}.iterator: must give a list, got {type(items).__name__}"
                )
            entry["iterator"] = {"index": 0, "itered": items}
        else:
            entry["branchall"] = {"branch": 0, "len": len(module.branches)}
        return await self._next_children(index, module)

    # -- preprocessor and failure module -----------------------------------------------------

    async def _preprocessor_ended(self, child_id: UUID, outcome: JobOutcome) -> None:
        entry = self.status.get("preprocessor_module")
        if entry is None or entry.get("job") != str(child_id):
            return
        if outcome.status is not JobStatus.SUCCESS:
            entry["type"] = "Failure"
            status = (
                JobStatus.CANCELED if outcome.status is JobStatus.CANCELED else JobStatus.FAILURE
            )
            await self._conclude(Ended(status, _with_step(outcome.result, PREPROCESSOR_STEP)))
            return
        if not isinstance(outcome.result, dict):
            entry["type"] = "Failure"
            await self._conclude(
                self._fail_now(
                    PREPROCESSOR_STEP, "the preprocessor must return an object (the flow's input)"
                )
            )
            return
        entry["type"] = "Success"
        self.row["args"] = outcome.result
        await self.tx.execute("set_flow_input", id=self.id, args=Json(outcome.result))
        await self._conclude(await self._run_from(0, 0.0))

    async def _failure_module_ended(self, child_id: UUID, outcome: JobOutcome) -> None:
        entry = self.status.get("failure_module")
        if entry is None or entry.get("job") != str(child_id):
            return
        entry.update(type="Success" if outcome.status is JobStatus.SUCCESS else "Failure")
        entry["result"] = outcome.result
        await self._complete(Ended(JobStatus.FAILURE, self.status.get("error_result")))

    async def _start_failure_module(self, error: Any) -> bool:
        """Start the failure module once; False when there is none (or it ran already)."""
        module = self.flow.failure_module
        entry = self.status.get("failure_module")
        if module is None or entry is None or entry["type"] != "WaitingForPriorSteps":
            return False
        self.status["error_result"] = error
        detail = error.get("error", error) if isinstance(error, dict) else error
        if self.row["kind"] == "singlestepflow":
            args = error_handler_args(self.row, error, dict(module.extra_args))
        else:
            scope = {**self._scope(), "error": detail, "previous_result": detail}
            try:
                args = {
                    "error": detail,
                    "flow_input": self.flow_input,
                    **self._args_of(module, scope),
                }
            except StepError as failure:
                entry.update(type="Failure", result=_failure(str(failure)))
                return False
        if module.type == "identity":
            entry.update(type="Success", result=detail)
            return False
        try:
            job_id = await self._queue_job(
                module, args, step_id=FAILURE_STEP, step=len(self.flow.modules), delay_s=0.0
            )
        except StepError as failure:
            entry.update(type="Failure", result=_failure(str(failure)))
            return False
        entry.update(type="InProgress", job=str(job_id))
        await self._save()
        return True

    # -- ending ----------------------------------------------------------------------------

    async def _conclude(self, ended: Ended | None) -> None:
        if ended is None:
            return
        if ended.status is JobStatus.FAILURE:
            if self.row["parent_job"] is None:
                await self._alert(ended.result)
            if await self._start_failure_module(ended.result):
                return
        await self._complete(ended)

    async def _complete(self, ended: Ended, *, advance_parent: bool = True) -> None:
        started: datetime | None = self.row["started_at"]
        duration_ms = int((utc_now() - started).total_seconds() * 1000) if started else 0
        failed = [UUID(j) for j in self.status.get("retry", {}).get("failed_jobs", [])]
        await complete_job(
            self.tx,
            self.id,
            JobOutcome(
                status=ended.status,
                result=ended.result,
                started_at=started,
                duration_ms=duration_ms,
            ),
            retries=failed or None,
            flow_status=self.status,
            advance_parent=advance_parent,
        )

    async def _cancel_children(self) -> None:
        """Cancel the children still queued or running (the siblings of a failed child)."""
        await self._save()
        for child in await self.tx.fetch_all("lock_queued_children", parent_job=self.id):
            try:
                await cancel_job(
                    self.tx, self.row["workspace_id"], child["id"], "flow", "a sibling step failed"
                )
            except NotFound:
                continue

    async def _alert(self, error: Any) -> None:
        await self.tx.execute(
            "insert_alert",
            alert_type="job_failed",
            message=(
                f"Job {self.id} ({self.row['runnable_path']}) failed after "
                f"{self.status['retry']['fail_count']} attempt(s): {_message(error)}"
            ),
            workspace_id=self.row["workspace_id"],
            resource=self.row["runnable_path"],
        )

    def _fail_now(self, step_id: str, message: str) -> Ended:
        return Ended(JobStatus.FAILURE, _with_step(_failure(message), step_id))

    async def _save(self) -> None:
        await self.tx.execute("set_job_status", id=self.id, flow_status=Json(self.status))

    # -- scope -----------------------------------------------------------------------------

    @property
    def flow_input(self) -> dict[str, Any]:
        """The flow's input: its job arguments."""
        return dict(self.row["args"] or {})

    def flow_value_of(self, index: int) -> Mapping[str, Any]:
        """The raw JSON `value` of module `index`."""
        value: Mapping[str, Any] = self.row["raw_flow"]["modules"][index]["value"]
        return value

    def results(self) -> dict[str, Any]:
        """The results of the steps so far, by module id, the enclosing flows' included."""
        context = self.status.get("context", {})
        results = dict(context.get("results", {}))
        for entry in self.status["modules"]:
            if entry.get("type") == "Success" and "result" in entry:
                results[entry["id"]] = entry["result"]
        return results

    def previous_result(self) -> Any:
        """The result of the last step that ended, or the enclosing flow's previous result."""
        for entry in reversed(self.status["modules"][: self.status.get("step", 0)]):
            if entry.get("type") == "Success" and "result" in entry:
                return entry["result"]
        context = self.status.get("context")
        if context is not None:
            return context.get("previous_result")
        return self.flow_input if self.status.get("step", 0) == 0 else None

    def _scope(self) -> dict[str, Any]:
        return {
            "flow_input": self.flow_input,
            "results": self.results(),
            "previous_result": self.previous_result(),
        }

    def _args_of(self, module: FlowModule, scope: dict[str, Any]) -> dict[str, Any]:
        """The module's arguments: its input transforms evaluated, then its extra args."""
        params = {
            name: transform.static
            for name, transform in module.input_transforms.items()
            if transform.expr is None
        }
        args: dict[str, Any] = {}
        for name, transform in module.input_transforms.items():
            if transform.expr is None:
                args[name] = transform.static
                continue
            try:
                args[name] = expressions.evaluate(transform.expr, {**scope, "params": params})
            except ExpressionError as error:
                raise StepError(
                    _expression_message(
                        f"{module.id}.input_transforms.{name}", transform.expr, error
                    )
                ) from error
        args.update(module.extra_args)
        return args

    async def _results_of(self, job_ids: Sequence[str]) -> list[Any]:
        rows = await self.tx.fetch_all("get_completed_results", ids=[UUID(j) for j in job_ids])
        by_id = {str(row["id"]): row["result"] for row in rows}
        return [by_id.get(job_id) for job_id in job_ids]


async def advance_flow(
    tx: Transaction, flow_id: UUID, child_id: UUID, step_id: str | None, outcome: JobOutcome
) -> None:
    """Move the flow job `flow_id` on after its child `child_id` ended with `outcome`."""
    run = await FlowRun.load(tx, flow_id)
    if run is not None:
        await run.child_ended(child_id, step_id, outcome)


def _succeeded(status: JobStatus) -> bool:
    """A step that succeeded, or a flow node stopped early and marked skipped."""
    return status in (JobStatus.SUCCESS, JobStatus.SKIPPED)


def _child_count(entry: Mapping[str, Any]) -> int:
    if "iterator" in entry:
        return len(entry["iterator"]["itered"])
    return int(entry["branchall"]["len"])


def _in_flight_limit(module: FlowModule, total: int) -> int:
    if not module.parallel:
        return 1
    return max(1, min(module.parallelism or total, total))


def _advance_position(entry: dict[str, Any], module: FlowModule, started: int) -> None:
    if module.type == "forloopflow":
        entry["iterator"]["index"] = started
    else:
        entry["branchall"]["branch"] = started


def _value_of(transform: Transform, scope: Mapping[str, Any]) -> Any:
    if transform.expr is None:
        return transform.static
    return expressions.evaluate(transform.expr, scope)


def _seconds(value: Any, module_id: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise StepError(f"{module_id}.sleep: must be a number of seconds >= 0, got {value!r}")
    return float(value)


def _failure(message: str) -> dict[str, Any]:
    return error_result("FlowError", message)


def _expression_message(where: str, expr: str, error: ExpressionError) -> str:
    return f"{where}: the expression {expr!r} failed: {error}"


def _expression_failure(module_id: str, expr: str, error: ExpressionError) -> dict[str, Any]:
    return error_result(
        "ExpressionError", _expression_message(f"{module_id}.stop_after_if", expr, error)
    )


def _with_step(error: Any, step_id: str) -> Any:
    if isinstance(error, dict) and isinstance(error.get("error"), dict):
        detail = dict(error["error"])
        detail.setdefault("step_id", step_id)
        return {**error, "error": detail}
    return error


def _message(result: Any) -> str:
    if isinstance(result, dict) and isinstance(result.get("error"), dict):
        error = result["error"]
        return f"{error.get('name', 'Error')}: {error.get('message', '')}"
    return str(result)[:500]

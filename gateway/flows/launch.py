"""Starting a module's work: script jobs, sub-flows, for-loop iterations and branches as child
flow jobs, and the modules that need no job (identity, an empty loop, a branch without modules).

A child flow job that needs no job either is run to its end here, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from gateway.errors import InvalidInput, NotFound
from gateway.flow_versions import latest_flow_version

# `outcomes` and this module call each other (a module's end starts the next, a retry restarts
# one), so each imports the other as a module.
from gateway.flows import expressions, outcomes
from gateway.flows.children import insert_node
from gateway.flows.expressions import ExpressionError
from gateway.flows.finish import complete, conclude, start_failure_module
from gateway.flows.model import FlowModule, parse_flow
from gateway.flows.script_jobs import queue_job, start_job
from gateway.flows.status import (
    PREPROCESSOR_STEP,
    Ended,
    FlowRun,
    StepError,
    fail_now,
    failure,
    new_status,
    succeeded,
)
from gateway.flows.transforms import args_of, expression_message, value_of
from gateway.jobs.model import JobOutcome, JobStatus
from gateway.store.values import utc_now


async def begin(run: FlowRun, preprocess: bool) -> None:
    """Start the flow: its preprocessor on the trigger event, or its first module."""
    module = run.flow.preprocessor_module
    if preprocess and module is not None:
        try:
            # The preprocessor takes the trigger's arguments as they came.
            args = {**run.flow_input, **(await args_of(module, run.scope()))}
            job_id = await queue_job(
                run, module, args, step_id=PREPROCESSOR_STEP, step=-1, delay_s=0.0
            )
        except StepError as error:
            await conclude(run, fail_now(PREPROCESSOR_STEP, str(error)))
            return
        run.status["preprocessor_module"].update(type="InProgress", job=str(job_id))
        await run.save()
        return
    await conclude(run, await run_from(run, 0, 0.0))


async def run_from(run: FlowRun, index: int, delay_s: float) -> Ended | None:
    """Start modules from `index` on; passes modules that need no job; the end or None."""
    run.status["step"] = index
    if index >= len(run.flow.modules):
        return Ended(JobStatus.SUCCESS, run.previous_result())
    return await start_module(run, index, delay_s)


async def start_module(run: FlowRun, index: int, delay_s: float) -> Ended | None:
    """Start module `index` (again, on a retry) after `delay_s`; the flow's end or None."""
    module = run.flow.modules[index]
    entry = run.status["modules"][index]
    kept = {"id": module.id}
    entry.clear()
    entry.update(kept)
    scope = run.scope()
    try:
        if module.type == "identity":
            return await outcomes.module_succeeded(run, index, scope["previous_result"])
        if module.type in ("rawscript", "script"):
            job_id = await start_job(run, module, module.id, index, scope, delay_s=delay_s)
            entry.update(
                type="WaitingForExecutor" if delay_s > 0 else "InProgress", job=str(job_id)
            )
            await run.save()
            return None
        if module.type == "flow":
            return await _start_subflow(run, index, module, scope)
        if module.type == "branchone":
            return await _start_branchone(run, index, module, scope)
        return await _start_container(run, index, module, scope)
    except StepError as error:
        return await outcomes.module_failed(run, index, failure(str(error)))


async def _start_subflow(
    run: FlowRun, index: int, module: FlowModule, scope: dict[str, Any]
) -> Ended | None:
    assert module.path is not None
    try:
        found = await latest_flow_version(run.tx, run.row["workspace_id"], module.path)
    except NotFound as error:
        raise StepError(f"{module.id}: {error}") from error
    args = await args_of(module, scope)
    started = await _start_node(
        run, index, module.id, (), args, value=found.value, path=module.path, version=found.version
    )
    return await _node_started(run, index, *started)


async def _start_branchone(
    run: FlowRun, index: int, module: FlowModule, scope: dict[str, Any]
) -> Ended | None:
    entry = run.status["modules"][index]
    chosen: int | None = None
    for number, branch in enumerate(module.branches):
        assert branch.expr is not None
        try:
            if await expressions.evaluate(branch.expr, scope):
                chosen = number
                break
        except ExpressionError as error:
            raise StepError(
                expression_message(f"{module.id}.branches[{number}]", branch.expr, error)
            ) from error
    raw_value = run.flow_value_of(index)
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
        return await outcomes.module_succeeded(run, index, scope["previous_result"])
    started = await _start_node(run, index, module.id, raw_modules, run.flow_input)
    return await _node_started(run, index, *started)


async def _node_started(
    run: FlowRun, index: int, node_id: UUID, ended: Ended | None
) -> Ended | None:
    """Module `index` runs in the child flow job `node_id` (which may have ended at once)."""
    run.status["modules"][index].update(type="InProgress", job=str(node_id))
    if ended is None:
        await run.save()
        return None
    outcome = JobOutcome(status=ended.status, result=ended.result, started_at=None, duration_ms=0)
    return await outcomes.module_ended(run, index, outcome)


async def _start_container(
    run: FlowRun, index: int, module: FlowModule, scope: dict[str, Any]
) -> Ended | None:
    entry = run.status["modules"][index]
    entry.update(type="InProgress", flow_jobs=[], flow_jobs_success=[])
    if module.type == "forloopflow":
        assert module.iterator is not None
        try:
            items = await value_of(module.iterator, scope)
        except ExpressionError as error:
            raise StepError(
                expression_message(f"{module.id}.iterator", module.iterator.expr or "", error)
            ) from error
        if not isinstance(items, list):
            raise StepError(f"{module.id}.iterator: must give a list, got {type(items).__name__}")
        entry["iterator"] = {"index": 0, "itered": items}
    else:
        entry["branchall"] = {"branch": 0, "len": len(module.branches)}
    return await next_children(run, index, module)


async def next_children(run: FlowRun, index: int, module: FlowModule) -> Ended | None:
    """Start children while the module's limit allows; its result once all have ended."""
    entry = run.status["modules"][index]
    total = _child_count(entry)
    limit = _in_flight_limit(module, total)
    while True:
        done = [s for s in entry["flow_jobs_success"] if s is not None]
        started = len(entry["flow_jobs"])
        if len(done) == total:
            results = await _results_of(run, entry["flow_jobs"])
            return await outcomes.module_succeeded(run, index, results)
        if started == total or started - len(done) >= limit:
            await run.save()
            return None
        try:
            node_id, ended = await _start_node_for(run, index, module, started)
        except StepError as error:
            return await outcomes.module_failed(run, index, failure(str(error)))
        entry["flow_jobs"].append(str(node_id))
        entry["flow_jobs_success"].append(None)
        _advance_position(entry, module, started + 1)
        if ended is not None:
            entry["flow_jobs_success"][started] = succeeded(ended.status)
            if ended.status is JobStatus.CANCELED:
                return Ended(JobStatus.CANCELED, ended.result)
            if not succeeded(ended.status) and not may_skip(module, started):
                return await outcomes.module_failed(run, index, ended.result)


def may_skip(module: FlowModule, position: int) -> bool:
    """Whether the failure of child `position` of a loop or branchall leaves the module going."""
    if module.type == "forloopflow":
        return module.skip_failures
    return module.branches[position].skip_failure


async def _start_node_for(
    run: FlowRun, index: int, module: FlowModule, position: int
) -> tuple[UUID, Ended | None]:
    raw_value = run.flow_value_of(index)
    if module.type == "forloopflow":
        entry = run.status["modules"][index]
        item = entry["iterator"]["itered"][position]
        args = {**run.flow_input, "iter": {"value": item, "index": position}}
        return await _start_node(run, index, module.id, raw_value.get("modules", []), args)
    branch = raw_value.get("branches", [])[position]
    return await _start_node(run, index, module.id, branch.get("modules", []), run.flow_input)


async def _start_node(
    run: FlowRun,
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
        context = {"results": run.results(), "previous_result": run.previous_result()}
    status = new_status(node_flow, context)
    node_id = await insert_node(
        run.tx,
        run.row,
        step_id=step_id,
        step=index,
        value=node_value,
        args=args,
        status=status,
        path=path,
        version=version,
    )
    row = {
        **run.row,
        "id": node_id,
        "raw_flow": node_value,
        "args": dict(args),
        "parent_job": run.id,
        "root_job": run.row["root_job"] or run.id,
        "runnable_path": path or run.row["runnable_path"],
        "runnable_id": version if path else run.row["runnable_id"],
        "kind": "flow",
        "started_at": utc_now(),
        "flow_status": status,
    }
    node = FlowRun(run.tx, row, node_flow)
    ended = await run_from(node, 0, 0.0)
    if ended is None:
        await node.save()
        return node_id, None
    if ended.status is JobStatus.FAILURE and await start_failure_module(node, ended.result):
        return node_id, None
    # The node ended without a job: complete it here, its parent (this run) takes it from here.
    await complete(node, ended, advance_parent=False)
    return node_id, ended


async def _results_of(run: FlowRun, job_ids: Sequence[str]) -> list[Any]:
    rows = await run.tx.fetch_all("get_completed_results", ids=[UUID(j) for j in job_ids])
    by_id = {str(row["id"]): row["result"] for row in rows}
    return [by_id.get(job_id) for job_id in job_ids]


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

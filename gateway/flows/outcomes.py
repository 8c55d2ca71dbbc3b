"""What happens when a child job of a flow ends: its result recorded, `stop_after_if` and `sleep`
applied, a retry or the module's failure, a loop's or branch's next child, the preprocessor's
output taken as the flow's input, and the failure module's end.
"""

from __future__ import annotations

import logging
import random
from typing import Any
from uuid import UUID

from gateway.errors import NotFound
from gateway.executor.outcome import error_result

# `launch` and this module call each other (a module's end starts the next, a retry restarts
# one), so each imports the other as a module.
from gateway.flows import expressions, launch
from gateway.flows.expressions import ExpressionError
from gateway.flows.finish import complete, conclude
from gateway.flows.model import FlowModule
from gateway.flows.status import (
    CONTAINERS,
    FAILURE_STEP,
    PREPROCESSOR_STEP,
    Ended,
    FlowRun,
    StepError,
    fail_now,
    failure,
    succeeded,
    with_step,
)
from gateway.flows.transforms import expression_failure, expression_message, seconds, value_of
from gateway.jobs.cancel import cancel_job
from gateway.jobs.model import JobOutcome, JobStatus
from gateway.store import Json

logger = logging.getLogger(__name__)


async def child_ended(
    run: FlowRun, child_id: UUID, step_id: str | None, outcome: JobOutcome
) -> None:
    """Record the end of child job `child_id` and start what comes next."""
    if step_id == FAILURE_STEP:
        await _failure_module_ended(run, child_id, outcome)
        return
    if step_id == PREPROCESSOR_STEP:
        await _preprocessor_ended(run, child_id, outcome)
        return
    index = run.status.get("step", 0)
    modules = run.status["modules"]
    if not (0 <= index < len(modules)) or modules[index]["id"] != step_id:
        return  # a late child of a module that already ended (e.g. canceled siblings)
    entry = modules[index]
    module = run.flow.modules[index]
    if entry["type"] not in ("InProgress", "WaitingForExecutor"):
        return
    if module.type in CONTAINERS:
        ended = await _container_child_ended(run, index, module, child_id, outcome)
    elif entry.get("job") != str(child_id):
        return
    else:
        ended = await module_ended(run, index, outcome)
    await conclude(run, ended)


async def module_ended(run: FlowRun, index: int, outcome: JobOutcome) -> Ended | None:
    """Module `index` ended with `outcome`: what comes next, or the flow's end."""
    if succeeded(outcome.status):
        return await module_succeeded(run, index, outcome.result)
    if outcome.status is JobStatus.CANCELED:
        run.status["modules"][index]["type"] = "Failure"
        return Ended(JobStatus.CANCELED, outcome.result)
    return await module_failed(run, index, outcome.result)


async def module_succeeded(run: FlowRun, index: int, result: Any) -> Ended | None:
    """Record `result`, apply `stop_after_if` and `sleep`, and start the next module."""
    module = run.flow.modules[index]
    entry = run.status["modules"][index]
    entry.update(type="Success", result=result)
    run.status["retry"]["fail_count"] = 0  # failed_jobs keeps every failed attempt
    # What runs after a module sees its result as `result` and as `previous_result`.
    scope = {**run.scope(), "result": result, "previous_result": result}
    if module.stop_after_if is not None:
        try:
            stop = await expressions.evaluate(module.stop_after_if.expr, scope)
        except ExpressionError as error:
            return await module_failed(
                run, index, expression_failure(module.id, module.stop_after_if.expr, error)
            )
        if stop:
            entry["stopped"] = True
            final = JobStatus.SKIPPED if module.stop_after_if.skip_if_stopped else None
            return Ended(final or JobStatus.SUCCESS, result)
    delay = 0.0
    if module.sleep is not None:
        try:
            delay = seconds(await value_of(module.sleep, scope), module.id)
        except ExpressionError as error:
            message = expression_message(f"{module.id}.sleep", module.sleep.expr or "", error)
            return await module_failed(run, index, error_result("ExpressionError", message))
        except StepError as error:
            return await module_failed(run, index, failure(str(error)))
    return await launch.run_from(run, index + 1, delay)


async def module_failed(run: FlowRun, index: int, error: Any) -> Ended | None:
    """Module `index` failed with `error`: retry it if its policy says so, else fail the flow."""
    module = run.flow.modules[index]
    entry = run.status["modules"][index]
    retry_state = run.status["retry"]
    failed_before = int(retry_state["fail_count"])
    if entry.get("job"):
        retry_state["failed_jobs"].append(entry["job"])
    retry_state["fail_count"] = failed_before + 1
    entry["type"] = "Failure"  # late children of this attempt are ignored from now on
    await _cancel_children(run)
    policy = module.retry
    if policy is not None and policy.should_retry(failed_before, error, run.flow_input):
        delay = policy.delay_for(failed_before, random.Random()) or 0.0
        logger.info(
            "step %s of flow %s failed (attempt %d), retrying in %.2fs",
            module.id,
            run.row["runnable_path"],
            failed_before + 1,
            delay,
            extra={"action": "flow_step_retry", "job": str(run.id)},
        )
        return await launch.start_module(run, index, delay)
    return Ended(JobStatus.FAILURE, with_step(error, module.id))


async def _container_child_ended(
    run: FlowRun, index: int, module: FlowModule, child_id: UUID, outcome: JobOutcome
) -> Ended | None:
    entry = run.status["modules"][index]
    jobs: list[str] = entry["flow_jobs"]
    if str(child_id) not in jobs:
        return None
    position = jobs.index(str(child_id))
    entry["flow_jobs_success"][position] = succeeded(outcome.status)
    if outcome.status is JobStatus.CANCELED:
        entry["type"] = "Failure"
        return Ended(JobStatus.CANCELED, outcome.result)
    if not succeeded(outcome.status) and not launch.may_skip(module, position):
        entry["job"] = str(child_id)
        return await module_failed(run, index, outcome.result)
    return await launch.next_children(run, index, module)


async def _preprocessor_ended(run: FlowRun, child_id: UUID, outcome: JobOutcome) -> None:
    entry = run.status.get("preprocessor_module")
    if entry is None or entry.get("job") != str(child_id):
        return
    if outcome.status is not JobStatus.SUCCESS:
        entry["type"] = "Failure"
        status = JobStatus.CANCELED if outcome.status is JobStatus.CANCELED else JobStatus.FAILURE
        await conclude(run, Ended(status, with_step(outcome.result, PREPROCESSOR_STEP)))
        return
    if not isinstance(outcome.result, dict):
        entry["type"] = "Failure"
        await conclude(
            run,
            fail_now(
                PREPROCESSOR_STEP, "the preprocessor must return an object (the flow's input)"
            ),
        )
        return
    entry["type"] = "Success"
    run.row["args"] = outcome.result
    await run.tx.execute("set_flow_input", id=run.id, args=Json(outcome.result))
    await conclude(run, await launch.run_from(run, 0, 0.0))


async def _failure_module_ended(run: FlowRun, child_id: UUID, outcome: JobOutcome) -> None:
    entry = run.status.get("failure_module")
    if entry is None or entry.get("job") != str(child_id):
        return
    entry.update(type="Success" if outcome.status is JobStatus.SUCCESS else "Failure")
    entry["result"] = outcome.result
    await complete(run, Ended(JobStatus.FAILURE, run.status.get("error_result")))


async def _cancel_children(run: FlowRun) -> None:
    """Cancel the children still queued or running (the siblings of a failed child)."""
    await run.save()
    for child in await run.tx.fetch_all("lock_queued_children", parent_job=run.id):
        try:
            await cancel_job(
                run.tx, run.row["workspace_id"], child["id"], "flow", "a sibling step failed"
            )
        except NotFound:
            continue

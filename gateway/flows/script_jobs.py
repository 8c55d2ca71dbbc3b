"""Queueing the job of a script-like module (a script by path or hash, or inline code): a flow
step, the preprocessor, or the failure module.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from gateway.errors import NotFound
from gateway.flows.children import identity_of, insert_step
from gateway.flows.model import FlowModule
from gateway.flows.status import FAILURE_STEP, FlowRun, StepError
from gateway.flows.transforms import args_of
from gateway.scripts import Script, latest_script, parse_hash, script_by_hash


async def start_job(
    run: FlowRun,
    module: FlowModule,
    step_id: str,
    index: int,
    scope: dict[str, Any],
    *,
    delay_s: float,
) -> UUID:
    """Queue the job of a script module, its arguments from its input transforms."""
    # The script a single-step flow wraps takes the wrapper's arguments.
    if run.row["kind"] == "singlestepflow":
        args = dict(run.flow_input)
    else:
        args = await args_of(module, scope)
    return await queue_job(run, module, args, step_id=step_id, step=index, delay_s=delay_s)


async def queue_job(
    run: FlowRun,
    module: FlowModule,
    args: dict[str, Any],
    *,
    step_id: str,
    step: int,
    delay_s: float,
) -> UUID:
    """Queue the job of `module` with `args` as step `step_id` of the flow; its job id."""
    script = await _script_of(run, module) if module.type == "script" else None
    fields: dict[str, Any] = {"runnable_path": script.path if script else run.row["runnable_path"]}
    if script is None:
        fields.update(raw_code=module.content, language=module.language)
    if run.row["kind"] == "singlestepflow" and step_id != FAILURE_STEP:
        fields.update(
            timeout=run.row["timeout"], apply_preprocessor=run.row["preprocessed"] is False
        )
    job = identity_of(run.row, args, **fields)
    return await insert_step(
        run.tx, run.row, step_id=step_id, step=step, job=job, script=script, delay_s=delay_s
    )


async def _script_of(run: FlowRun, module: FlowModule) -> Script:
    workspace = run.row["workspace_id"]
    try:
        if module.hash is not None:
            return await script_by_hash(run.tx, workspace, parse_hash(module.hash))
        assert module.path is not None
        return await latest_script(run.tx, workspace, module.path)
    except (NotFound, ValueError) as error:
        raise StepError(f"{module.id}: {error}") from error

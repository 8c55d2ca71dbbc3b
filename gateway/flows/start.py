"""Starting flow runs: the flow job with its status, then its preprocessor or first steps."""

from __future__ import annotations

from uuid import UUID

from gateway.errors import InvalidInput
from gateway.flows.launch import begin
from gateway.flows.model import parse_flow
from gateway.flows.status import FlowRun, new_status
from gateway.jobs.enqueue import insert_records, job_record
from gateway.jobs.model import NewJob
from gateway.store import Json, Transaction


async def start_flow(tx: Transaction, job_id: UUID, job: NewJob) -> None:
    """Insert the flow job `job_id` for `job` (a NewJob with `flow_value`) and start it.

    Raises InvalidInput when the flow value is not a flow the engine runs. A suspended job is
    parked (kind `unassigned_flow`) and starts when released (`resume_flow`).
    """
    if job.flow_value is None:
        raise InvalidInput("flow_value", "a flow run needs the flow's value")
    flow = parse_flow(job.flow_value)
    record = job_record(job_id, job, None)
    record.update(
        raw_flow=dict(job.flow_value),
        tag="flow",
        kind="unassigned_flow" if job.suspended else "flow",
        runnable_id=job.flow_version,
        script_lang=None,
        flow_step=None,
        flow_step_id=None,
        preprocessed=False if job.apply_preprocessor and flow.preprocessor_module else None,
        running=not job.suspended,
    )
    await insert_records(tx, [record])
    await tx.execute("insert_job_status", id=job_id, flow_status=Json(new_status(flow)))
    if not job.suspended:
        await resume_flow(tx, job_id)


async def resume_flow(tx: Transaction, job_id: UUID) -> None:
    """Start the flow job `job_id`, already inserted and running, from its beginning."""
    run = await FlowRun.load(tx, job_id)
    if run is None:
        raise InvalidInput("job", f"flow job {job_id} is not queued")
    await begin(run, preprocess=run.row["preprocessed"] is False)

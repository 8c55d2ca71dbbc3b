"""The flow engine: advances flow jobs in the transactions that start them and end their steps.

A flow job never runs as a process. Its `v2_job_status.flow_status` (Windmill's shape) says
which module is at work; each module that needs work has child jobs: a script or inline script
job, or a child flow job (a sub-flow, one for-loop iteration, one branch). When a child ends,
`advance_flow` (called by `complete_job` in the same transaction) records its result and starts
what comes next, so every transition happens exactly once. Modules that need no job (identity,
an empty loop, a branch without modules) are passed inline.

The parts: `status` (the flow_status document and the loaded `FlowRun`), `launch` (starting a
module's work), `outcomes` (what happens when a child ends), `finish` (the failure module and
the job's completion), with `script_jobs` and `transforms` beneath them.
"""

from __future__ import annotations

from uuid import UUID

from gateway.flows.outcomes import child_ended
from gateway.flows.status import FlowRun
from gateway.jobs.model import JobOutcome
from gateway.store import Transaction


async def advance_flow(
    tx: Transaction, flow_id: UUID, child_id: UUID, step_id: str | None, outcome: JobOutcome
) -> None:
    """Move the flow job `flow_id` on after its child `child_id` ended with `outcome`."""
    run = await FlowRun.load(tx, flow_id)
    if run is not None:
        await child_ended(run, child_id, step_id, outcome)

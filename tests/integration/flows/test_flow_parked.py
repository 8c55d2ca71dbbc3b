"""A flow run parked by a suspended trigger starts from its first step when resumed."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from gateway.executor.worker import Executor
from gateway.flow_versions import FlowDraft, save_flow
from gateway.jobs.read import JobFilter, get_job, list_jobs
from gateway.jobs.suspended import resume_parked_jobs
from gateway.settings import Settings
from gateway.store import Store

from ..support import OWNER, WS, add_scripts, completed, submit
from ..test_suspended_jobs import TRIGGER, save_trigger
from .test_flow_runs import flow_run, py

FLOW = {"modules": [py("a", "def main(x: int):\n    return x * 10\n", x="flow_input.x")]}


async def test_a_parked_flow_runs_once_resumed(store: Store, settings: Settings) -> None:
    await add_scripts(store)
    async with store.transaction() as tx:
        await save_flow(tx, WS, FlowDraft(path="f/t/flow", value=FLOW), OWNER.username)
    await save_trigger(store, "flow", is_flow=True)
    await asyncio.sleep(0.01)
    job = replace(flow_run(FLOW, {"x": 4}), trigger_kind="nats", trigger=TRIGGER, suspended=True)
    (job_id,) = await submit(store, job)
    assert (await get_job(store, WS, job_id))["job_kind"] == "unassigned_flow"
    assert await list_jobs(store, WS, JobFilter(parent_job=job_id)) == []
    async with store.transaction() as tx:
        assert await resume_parked_jobs(tx, WS, "nats", TRIGGER) == 1
    executor = Executor(store, settings)
    await executor.start()
    try:
        done = await completed(store, job_id)
    finally:
        await executor.stop(grace_s=1.0)
    assert done["job_kind"] == "flow"
    assert done["result"] == 40

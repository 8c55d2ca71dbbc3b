"""A suspended trigger whose target became a flow: its parked jobs are pushed again as runs of
the flow's latest version, without the trigger's retry policy."""

from __future__ import annotations

import asyncio

from gateway.flow_versions import FlowDraft, save_flow
from gateway.jobs.read import JobFilter, list_jobs
from gateway.jobs.suspended import resume_parked_jobs
from gateway.store import Store

from .support import OWNER, WS, add_scripts, submit
from .test_suspended_jobs import TRIGGER, parked, save_trigger

NEGATE = {
    "modules": [
        {
            "id": "a",
            "value": {
                "type": "rawscript",
                "language": "python3",
                "content": "def main(x: int):\n    return -x\n",
                "input_transforms": {"x": {"type": "javascript", "expr": "flow_input.x"}},
            },
        }
    ]
}


async def test_parked_jobs_are_pushed_again_to_the_flow_the_trigger_now_targets(
    store: Store,
) -> None:
    await add_scripts(store, a="def main(x: int):\n    return x\n")
    await save_trigger(store, "a")
    (old,) = await submit(store, parked("a", args={"x": 5}, dedup_key="nats:evt-1"))
    async with store.transaction() as tx:
        await save_flow(tx, WS, FlowDraft("f/t/negate", NEGATE), OWNER.username)
    await asyncio.sleep(0.01)
    retry = {"constant": {"attempts": 1, "seconds": 1}}
    await save_trigger(store, "negate", is_flow=True, retry=retry)

    async with store.transaction() as tx:
        assert await resume_parked_jobs(tx, WS, "nats", TRIGGER) == 1

    (job,) = await list_jobs(store, WS, JobFilter(trigger=TRIGGER))
    assert job["id"] != str(old)
    assert (job["job_kind"], job["script_path"]) == ("flow", "f/t/negate")
    assert job["args"] == {"x": 5}
    assert job["raw_flow"] == NEGATE
    assert "retry" not in job["raw_flow"]["modules"][0]

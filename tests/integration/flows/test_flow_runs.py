"""Flows run by the real executor on each store: every module type, expressions, retries,
the failure module, loops with a parallelism limit, branches, sub-flows, early stops, cancel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest

from gateway.errors import InvalidInput
from gateway.executor.worker import Executor
from gateway.flow_versions import FlowDraft, save_flow
from gateway.jobs.cancel import cancel_job
from gateway.jobs.model import NewJob
from gateway.jobs.read import JobFilter, get_job, list_jobs
from gateway.settings import Settings
from gateway.store import Store

from ..support import OWNER, WS, add_scripts, completed, eventually, submit


@pytest.fixture
async def executor(store: Store, settings: Settings) -> AsyncIterator[Executor]:
    await add_scripts(store)  # the workspace
    running = Executor(store, settings)
    await running.start()
    yield running
    await running.stop(grace_s=1.0)


def flow_run(value: Mapping[str, Any], args: Mapping[str, Any] | None = None) -> NewJob:
    """A run of the flow `value` at path f/t/flow."""
    return NewJob(
        workspace_id=WS,
        args=args or {},
        permissioned_as=OWNER.permissioned_as,
        permissioned_as_email=OWNER.email,
        created_by=OWNER.username,
        runnable_path="f/t/flow",
        flow_value=value,
    )


def py(module_id: str, code: str, **transforms: Any) -> dict[str, Any]:
    """A python3 rawscript module; transforms given as strings are JavaScript expressions."""
    return {
        "id": module_id,
        "value": {
            "type": "rawscript",
            "language": "python3",
            "content": code,
            "input_transforms": {
                name: (
                    {"type": "javascript", "expr": value}
                    if isinstance(value, str)
                    else {"type": "static", "value": value}
                )
                for name, value in transforms.items()
            },
        },
    }


def loop_over(values: list[Any], body: dict[str, Any], **options: Any) -> dict[str, Any]:
    """A flow of one for-loop module, `loop`, over static `values`, running `body` per item."""
    iterator = {"type": "static", "value": values}
    value = {"type": "forloopflow", "iterator": iterator, **options, "modules": [body]}
    return {"modules": [{"id": "loop", "value": value}]}


async def run(store: Store, value: Mapping[str, Any], **args: Any) -> dict[str, Any]:
    (job_id,) = await submit(store, flow_run(value, args))
    return await completed(store, job_id, timeout_s=60.0)


async def children_of(store: Store, parent: UUID | str) -> list[dict[str, Any]]:
    """The child jobs of a flow job, oldest first."""
    where = JobFilter(parent_job=UUID(str(parent)), per_page=200)
    return list(reversed(await list_jobs(store, WS, where)))


async def test_steps_pass_results_through_expressions(store: Store, executor: Executor) -> None:
    flow = {
        "modules": [
            py("a", "def main(x: int):\n    return x + 1\n", x="flow_input.n"),
            py("b", "def main(y: int, z: int):\n    return y * z\n", y="results.a", z=10),
            {"id": "c", "value": {"type": "identity"}},
            py("d", "def main(v):\n    return {'last': v}\n", v="previous_result + results.a"),
        ]
    }
    job = await run(store, flow, n=4)
    assert job["success"] is True
    assert job["result"] == {"last": 55}
    status = job["flow_status"]
    assert [m["type"] for m in status["modules"]] == ["Success"] * 4
    assert status["modules"][1]["result"] == 50


async def test_script_modules_by_path_and_bash(store: Store, executor: Executor) -> None:
    await add_scripts(
        store,
        double="def main(x: int):\n    return 2 * x\n",
        shout=("bash", 'echo "${1}!"\n'),
    )
    flow = {
        "modules": [
            {
                "id": "a",
                "value": {
                    "type": "script",
                    "path": "f/t/double",
                    "input_transforms": {"x": {"type": "javascript", "expr": "flow_input.x"}},
                },
            },
            {
                "id": "b",
                "value": {
                    "type": "rawscript",
                    "language": "bash",
                    "content": 'word="$1"\necho "got $word"\n',
                    "input_transforms": {"word": {"type": "javascript", "expr": "`n${results.a}`"}},
                },
            },
        ]
    }
    job = await run(store, flow, x=21)
    assert job["success"] is True
    assert job["result"] == "got n42"
    steps = await children_of(store, job["id"])
    assert [s["flow_step_id"] for s in steps] == ["a", "b"]
    assert {s["root_job"] for s in steps} == {job["id"]}


async def test_failing_step_is_retried_then_the_failure_module_runs(
    store: Store, executor: Executor
) -> None:
    flow = {
        "modules": [
            {
                **py("flaky", "def main():\n    raise ValueError('always')\n"),
                "retry": {"constant": {"attempts": 2, "seconds": 0}},
            },
            py("never", "def main():\n    return 'unreached'\n"),
        ],
        "failure_module": py(
            "failure",
            "def main(error: dict, flow_input: dict):\n"
            "    return {'handled': error['message'], 'input': flow_input}\n",
        ),
    }
    job = await run(store, flow, who="me")
    assert job["success"] is False
    status = job["flow_status"]
    assert status["modules"][0]["type"] == "Failure"
    assert status["modules"][1]["type"] == "WaitingForPriorSteps"
    assert status["retry"]["fail_count"] == 3
    assert len(job["retries"]) == 3
    handler = status["failure_module"]
    assert handler["type"] == "Success"
    assert handler["result"]["input"] == {"who": "me"}
    assert "always" in handler["result"]["handled"]
    steps = await children_of(store, job["id"])
    assert [s["flow_step_id"] for s in steps] == ["flaky", "flaky", "flaky", "failure"]


async def test_for_loop_keeps_parallelism_and_order(store: Store, executor: Executor) -> None:
    flow = {
        "modules": [
            {
                "id": "loop",
                "value": {
                    "type": "forloopflow",
                    "iterator": {"type": "javascript", "expr": "[...Array(100).keys()]"},
                    "parallel": True,
                    "parallelism": 4,
                    "modules": [
                        py(
                            "square",
                            "def main(v: int):\n    return v * v\n",
                            v="flow_input.iter.value",
                        )
                    ],
                },
            }
        ]
    }
    job = await run(store, flow)
    assert job["success"] is True
    assert job["result"] == [i * i for i in range(100)]
    iterations = job["flow_status"]["modules"][0]["flow_jobs"]
    assert len(iterations) == 100
    spans = await _spans(store, iterations)
    assert 1 < _max_overlap(spans) <= 4


async def test_branches_default_and_all(store: Store, executor: Executor) -> None:
    flow = {
        "modules": [
            {
                "id": "pick",
                "value": {
                    "type": "branchone",
                    "branches": [
                        {
                            "expr": "flow_input.n > 100",
                            "modules": [py("big", "def main():\n    return 'big'\n")],
                        },
                    ],
                    "default": [py("small", "def main():\n    return 'small'\n")],
                },
            },
            {
                "id": "all",
                "value": {
                    "type": "branchall",
                    "parallel": True,
                    "branches": [
                        {
                            "modules": [
                                py("one", "def main(p):\n    return p + '-1'\n", p="results.pick")
                            ]
                        },
                        {
                            "skip_failure": True,
                            "modules": [py("two", "def main():\n    raise RuntimeError('x')\n")],
                        },
                        {"modules": []},
                    ],
                },
            },
        ]
    }
    job = await run(store, flow, n=3)
    assert job["success"] is True
    status = job["flow_status"]
    assert status["modules"][0]["branch_chosen"] == {"type": "default"}
    assert status["modules"][0]["result"] == "small"
    first, second, third = job["result"]
    assert first == "small-1"
    assert second["error"]["message"].endswith("x")
    assert third == "small"
    assert status["modules"][1]["flow_jobs_success"] == [True, False, True]


async def test_sub_flow_by_path(store: Store, executor: Executor) -> None:
    inner = {"modules": [py("inner", "def main(v: int):\n    return v + 100\n", v="flow_input.v")]}
    async with store.transaction() as tx:
        await save_flow(tx, WS, FlowDraft(path="f/t/inner", value=inner), OWNER.username)
    flow = {
        "modules": [
            {
                "id": "sub",
                "value": {
                    "type": "flow",
                    "path": "f/t/inner",
                    "input_transforms": {"v": {"type": "javascript", "expr": "flow_input.v * 2"}},
                },
            }
        ]
    }
    job = await run(store, flow, v=1)
    assert job["success"] is True
    assert job["result"] == 102
    (sub,) = await children_of(store, job["id"])
    assert sub["job_kind"] == "flow" and sub["script_path"] == "f/t/inner"


async def test_stop_after_if_ends_early_and_can_skip(store: Store, executor: Executor) -> None:
    def flow(skip: bool) -> dict[str, Any]:
        return {
            "modules": [
                {
                    **py("check", "def main(n: int):\n    return n\n", n="flow_input.n"),
                    "stop_after_if": {"expr": "result > 5", "skip_if_stopped": skip},
                },
                py("after", "def main():\n    return 'went on'\n"),
            ]
        }

    stopped = await run(store, flow(False), n=9)
    assert stopped["success"] is True and stopped["result"] == 9
    assert stopped["flow_status"]["modules"][1]["type"] == "WaitingForPriorSteps"
    skipped = await run(store, flow(True), n=9)
    assert skipped["result"] == 9
    assert skipped["status"] == "skipped"
    went_on = await run(store, flow(True), n=1)
    assert went_on["result"] == "went on"


async def test_expression_errors_name_the_module_and_expression(
    store: Store, executor: Executor
) -> None:
    flow = {"modules": [py("a", "def main(x):\n    return x\n", x="flow_input.missing.deeper")]}
    job = await run(store, flow)
    assert job["success"] is False
    message = job["result"]["error"]["message"]
    assert "a.input_transforms.x" in message
    assert "flow_input.missing.deeper" in message


async def test_cancel_a_flow_cancels_its_running_step(store: Store, executor: Executor) -> None:
    flow = {
        "modules": [
            py(
                "slow",
                "import time\ndef main():\n    print('go', flush=True)\n    time.sleep(60)\n",
            ),
            py("next", "def main():\n    return 1\n"),
        ]
    }
    (job_id,) = await submit(store, flow_run(flow))

    async def step_running() -> bool:
        job = await get_job(store, WS, job_id)
        step = job["flow_status"]["modules"][0].get("job")
        if step is None:
            return False
        return bool((await get_job(store, WS, UUID(step)))["running"])

    await eventually(step_running)
    async with store.transaction() as tx:
        await cancel_job(tx, WS, job_id, "alice", "enough")
    job = await completed(store, job_id)
    assert job["canceled"] is True
    (step,) = await children_of(store, job_id)
    assert step["canceled"] is True


async def test_invalid_flows_are_refused_at_enqueue(store: Store) -> None:
    await add_scripts(store)
    flow = {"modules": [{"id": "a", "value": {"type": "graphql"}}]}
    with pytest.raises(InvalidInput, match=r"modules\[0\]\.value\.type"):
        await submit(store, flow_run(flow))


async def _spans(store: Store, job_ids: list[str]) -> list[tuple[str, str]]:
    jobs = [await get_job(store, WS, UUID(job_id)) for job_id in job_ids]
    return [(job["started_at"], job["completed_at"]) for job in jobs]


def _max_overlap(spans: list[tuple[str, str]]) -> int:
    """The most spans open at once (a span ending when another starts does not overlap it)."""
    events = sorted([(end, -1) for _, end in spans] + [(start, 1) for start, _ in spans])
    open_now = most = 0
    for _, change in events:
        open_now += change
        most = max(most, open_now)
    return most


async def test_preprocessor_result_becomes_the_flow_input(store: Store, executor: Executor) -> None:
    flow = {
        "preprocessor_module": py(
            "preprocessor", "def main(event: dict):\n    return {'n': event['body']['x'] * 3}\n"
        ),
        "modules": [py("a", "def main(n: int):\n    return n + 1\n", n="flow_input.n")],
    }
    job = replace(flow_run(flow, {"event": {"body": {"x": 5}}}), apply_preprocessor=True)
    (job_id,) = await submit(store, job)
    done = await completed(store, job_id)
    assert done["result"] == 16
    assert done["args"] == {"n": 15}
    assert done["flow_status"]["preprocessor_module"]["type"] == "Success"


@pytest.mark.parametrize("skip", [False, True])
async def test_a_failed_iteration_fails_the_loop_unless_skipped(
    store: Store, executor: Executor, skip: bool
) -> None:
    body = "def main(v: int):\n    if v == 2:\n        raise ValueError('two')\n    return v\n"
    flow = loop_over([1, 2, 3], py("body", body, v="flow_input.iter.value"), skip_failures=skip)
    job = await run(store, flow)
    entry = job["flow_status"]["modules"][0]
    if skip:
        assert job["success"] is True
        assert job["result"][0] == 1 and job["result"][2] == 3
        assert "two" in job["result"][1]["error"]["message"]
        assert entry["flow_jobs_success"] == [True, False, True]
    else:
        assert job["success"] is False
        assert job["result"]["error"]["step_id"] == "body"
        assert entry["flow_jobs_success"] == [True, False]


async def test_loop_body_reads_outer_results_and_its_iteration(
    store: Store, executor: Executor
) -> None:
    flow = {
        "modules": [
            py("base", "def main():\n    return 100\n"),
            {
                "id": "loop",
                "value": {
                    "type": "forloopflow",
                    "iterator": {"type": "javascript", "expr": "['a', 'b']"},
                    "modules": [
                        py(
                            "label",
                            "def main(text: str):\n    return text\n",
                            text="`${flow_input.iter.index}:${flow_input.iter.value}:${results.base}`",
                        )
                    ],
                },
            },
        ]
    }
    job = await run(store, flow)
    assert job["result"] == ["0:a:100", "1:b:100"]


async def test_sleep_delays_the_next_step(store: Store, executor: Executor) -> None:
    flow = {
        "modules": [
            {
                **py("first", "def main():\n    return 1\n"),
                "sleep": {"type": "javascript", "expr": "3600 * previous_result"},
            },
            py("second", "def main():\n    return 2\n"),
        ]
    }
    (job_id,) = await submit(store, flow_run(flow))

    async def second_step() -> dict[str, Any] | None:
        entry = (await get_job(store, WS, job_id))["flow_status"]["modules"][1]
        return entry if entry.get("job") else None

    entry = await eventually(second_step)
    assert entry["type"] == "WaitingForExecutor"
    first, second = await children_of(store, job_id)
    waited = datetime.fromisoformat(second["scheduled_for"]) - datetime.fromisoformat(
        first["completed_at"]
    )
    assert waited.total_seconds() > 3000
    async with store.transaction() as tx:
        assert await cancel_job(tx, WS, job_id, "alice", None) is True
    assert (await completed(store, job_id))["canceled"] is True


async def test_cancel_reaches_every_iteration_of_a_parallel_loop(
    store: Store, executor: Executor
) -> None:
    slow = "import time\ndef main(v: int):\n    print('go', flush=True)\n    time.sleep(60)\n"
    flow = loop_over([1, 2, 3], py("slow", slow, v="flow_input.iter.value"), parallel=True)
    (job_id,) = await submit(store, flow_run(flow))

    async def all_running() -> list[str] | None:
        entry = (await get_job(store, WS, job_id))["flow_status"]["modules"][0]
        nodes = entry.get("flow_jobs", [])
        steps = [step for node in nodes for step in await children_of(store, node)]
        running = len(steps) == 3 and all(step.get("running") for step in steps)
        return nodes if running else None

    nodes = await eventually(all_running)
    async with store.transaction() as tx:
        await cancel_job(tx, WS, job_id, "alice", "stop")
    assert (await completed(store, job_id))["canceled"] is True
    for node in nodes:
        assert (await completed(store, UUID(node)))["canceled"] is True
        (step,) = await children_of(store, node)
        assert (await completed(store, UUID(step["id"])))["canceled"] is True


async def test_a_skipped_iteration_does_not_fail_its_loop(store: Store, executor: Executor) -> None:
    flow = {
        "modules": [
            {
                "id": "loop",
                "value": {
                    "type": "forloopflow",
                    "iterator": {"type": "static", "value": [1, 7, 2]},
                    "modules": [
                        {
                            **py(
                                "check",
                                "def main(v: int):\n    return v\n",
                                v="flow_input.iter.value",
                            ),
                            "stop_after_if": {"expr": "result > 5", "skip_if_stopped": True},
                        },
                        py("double", "def main(v: int):\n    return v * 2\n", v="previous_result"),
                    ],
                },
            }
        ]
    }
    job = await run(store, flow)
    assert job["success"] is True
    assert job["result"] == [2, 7, 4]


async def test_steps_know_their_flow_and_root_flow(store: Store, executor: Executor) -> None:
    code = (
        "import os\ndef main():\n"
        "    return [os.environ['WM_FLOW_JOB_ID'], os.environ['WM_ROOT_FLOW_JOB_ID']]\n"
    )
    flow = {
        "modules": [
            {
                "id": "pick",
                "value": {"type": "branchone", "branches": [], "default": [py("ids", code)]},
            }
        ]
    }
    job = await run(store, flow)
    node = job["flow_status"]["modules"][0]["job"]
    assert job["result"] == [node, job["id"]]


async def test_a_failing_iteration_cancels_its_running_siblings(
    store: Store, executor: Executor
) -> None:
    body = (
        "import time\ndef main(v: int):\n"
        "    if v == 0:\n        time.sleep(1)\n        raise ValueError('first fails')\n"
        "    time.sleep(60)\n"
    )
    flow = loop_over([0, 1, 2], py("body", body, v="flow_input.iter.value"), parallel=True)
    job = await run(store, flow)
    assert job["success"] is False
    assert "first fails" in job["result"]["error"]["message"]
    first, *others = job["flow_status"]["modules"][0]["flow_jobs"]
    assert (await completed(store, UUID(first)))["status"] == "failure"
    for node in others:
        assert (await completed(store, UUID(node)))["canceled"] is True

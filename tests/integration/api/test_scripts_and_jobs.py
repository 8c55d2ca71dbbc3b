"""Scripts and jobs through a running gateway, driven by the `windmill-api` client."""

from __future__ import annotations

import json
from uuid import UUID

from windmill_api.api.job import (
    cancel_queued_job,
    get_completed_job_result,
    get_job,
    get_job_logs,
    list_completed_jobs,
    list_jobs,
    list_queue,
    run_script_by_path,
    run_wait_result_script_by_path,
)
from windmill_api.api.script import create_script, exists_script_by_path, get_script_by_path
from windmill_api.models.cancel_queued_job_json_body import CancelQueuedJobJsonBody
from windmill_api.models.create_script_json_body import CreateScriptJsonBody
from windmill_api.models.run_script_by_path_json_body import RunScriptByPathJsonBody
from windmill_api.models.run_wait_result_script_by_path_json_body import (
    RunWaitResultScriptByPathJsonBody,
)

from ..support import WS, completed
from .conftest import Api

ADD = "def main(a: int, b: int):\n    print('adding', a, b)\n    return {'sum': a + b}\n"
FAIL = "def main():\n    raise ValueError('no luck')\n"


def script(path: str, content: str) -> CreateScriptJsonBody:
    """A create-script body for a python3 script."""
    return CreateScriptJsonBody.from_dict(
        {"path": path, "content": content, "language": "python3", "summary": "", "description": ""}
    )


async def test_script_is_created_run_by_path_and_read_back(served_api: Api) -> None:
    client = await served_api.client()
    created = await create_script.asyncio_detailed(
        WS, client=client, json_body=script("f/t/add", ADD)
    )
    assert created.status_code == 201
    version = created.content.decode()
    saved = await get_script_by_path.asyncio(WS, "f/t/add", client=client)
    assert saved is not None and saved.hash_ == version and saved.content == ADD
    assert saved.schema is not None and saved.schema.to_dict()["required"] == ["a", "b"]
    assert await exists_script_by_path.asyncio(WS, "f/t/add", client=client) is True

    queued = await run_script_by_path.asyncio_detailed(
        WS, "f/t/add", client=client, json_body=RunScriptByPathJsonBody.from_dict({"a": 40, "b": 2})
    )
    assert queued.status_code == 201
    job_id = UUID(queued.content.decode())
    await completed(served_api.store, job_id)

    result = await get_completed_job_result.asyncio_detailed(WS, str(job_id), client=client)
    assert json.loads(result.content) == {"sum": 42}
    job = await get_job.asyncio(WS, str(job_id), client=client)
    assert job is not None
    as_sent = job.to_dict()
    assert as_sent["success"] is True
    assert (as_sent["trigger_kind"], as_sent["trigger"]) == ("webhook", "f/t/add")
    logs = await get_job_logs.asyncio_detailed(WS, str(job_id), client=client)
    assert "adding 40 2" in logs.content.decode()

    listed = await list_jobs.asyncio(WS, client=client, script_path_exact="f/t/add")
    assert [j.id for j in listed or []] == [str(job_id)]
    done = await list_completed_jobs.asyncio(WS, client=client, success=True, job_kinds="script")
    assert str(job_id) in [j.id for j in done or []]
    assert await list_jobs.asyncio(WS, client=client, script_path_exact="f/t/none") == []
    assert [op for op in await served_api.audit_operations() if op != "jobs.run"] == [
        "scripts.create"
    ]


async def test_run_wait_result_answers_the_result_or_the_error(served_api: Api) -> None:
    client = await served_api.client()
    for path, content in (("f/t/add", ADD), ("f/t/fail", FAIL)):
        await create_script.asyncio_detailed(WS, client=client, json_body=script(path, content))

    ok = await run_wait_result_script_by_path.asyncio_detailed(
        WS,
        "f/t/add",
        client=client,
        json_body=RunWaitResultScriptByPathJsonBody.from_dict({"a": 1, "b": 2}),
    )
    assert (ok.status_code, json.loads(ok.content)) == (200, {"sum": 3})
    failed = await run_wait_result_script_by_path.asyncio_detailed(
        WS, "f/t/fail", client=client, json_body=RunWaitResultScriptByPathJsonBody.from_dict({})
    )
    assert failed.status_code == 500
    error = json.loads(failed.content)["error"]
    assert error["name"] == "ValueError" and "no luck" in error["message"]
    unknown = await run_wait_result_script_by_path.asyncio_detailed(
        WS, "f/t/none", client=client, json_body=RunWaitResultScriptByPathJsonBody.from_dict({})
    )
    assert unknown.status_code == 404


async def test_script_with_a_syntax_error_is_refused_naming_content(served_api: Api) -> None:
    client = await served_api.client()
    refused = await create_script.asyncio_detailed(
        WS, client=client, json_body=script("f/t/broken", "def main(:\n")
    )
    assert refused.status_code == 400
    assert json.loads(refused.content)["error"]["field"] == "content"
    assert await exists_script_by_path.asyncio(WS, "f/t/broken", client=client) is False


async def test_scheduled_job_is_listed_in_the_queue_and_canceled(served_api: Api) -> None:
    client = await served_api.client()
    queued = await run_script_by_path.asyncio_detailed(
        WS,
        "f/t/hello",
        client=client,
        json_body=RunScriptByPathJsonBody.from_dict({}),
        scheduled_in_secs=3600,
    )
    job_id = queued.content.decode()
    waiting = await list_queue.asyncio(WS, client=client, running=False)
    assert [j.id for j in waiting or []] == [job_id]
    canceled = await cancel_queued_job.asyncio_detailed(
        WS, job_id, client=client, json_body=CancelQueuedJobJsonBody.from_dict({"reason": "test"})
    )
    assert canceled.status_code == 200
    job = await completed(served_api.store, UUID(job_id))
    assert (job["status"], job["canceled_by"], job["canceled_reason"]) == (
        "canceled",
        "alice",
        "test",
    )
    assert "jobs.cancel" in await served_api.audit_operations()


async def test_script_version_runs_by_hash(served_api: Api) -> None:
    http = await served_api.http()
    saved = await http.post(
        f"/w/{WS}/scripts/create",
        json={"path": "f/t/add", "content": ADD, "language": "python3", "summary": ""},
    )
    queued = await http.post(f"/w/{WS}/jobs/run/h/{saved.text}", json={"a": 2, "b": 3})
    assert queued.status_code == 201
    job = await completed(served_api.store, UUID(queued.text))
    assert (job["result"], job["script_hash"]) == ({"sum": 5}, saved.text)
    missing = await http.post(f"/w/{WS}/jobs/run/h/{'0' * 16}", json={})
    assert missing.status_code == 404

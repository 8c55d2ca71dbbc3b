"""Webhooks over a real socket: `/api/w/{ws}/jobs/run/p/...`, `run_wait_result`, their token,
query options, bodies, idempotency and sync answers."""

from __future__ import annotations

import base64
import json
from typing import Any
from uuid import UUID

import httpx
import pytest

from gateway.jobs.read import JobFilter, get_job, list_jobs
from gateway.settings import Settings

from ..support import OWNER, WS, add_scripts, completed, eventually
from .conftest import Api

SCRIPTS = {
    "echo": "def main(**kwargs):\n    return kwargs\n",
    "respond": "def main(answer=None):\n    return answer\n",
    "fail": "def main():\n    raise ValueError('no luck')\n",
    "slow": "import time\n\ndef main():\n    time.sleep(60)\n",
    "event": (
        "def preprocessor(event):\n    return {'seen': event}\n\n"
        "def main(seen=None, **kwargs):\n    return {'seen': seen, 'kwargs': kwargs}\n"
    ),
    "legacy": (
        "def preprocessor(wm_trigger, **body):\n"
        "    return {'seen': {'body': body, 'wm_trigger': wm_trigger}}\n\n"
        "def main(seen):\n    return seen\n"
    ),
}
BODY_LIMIT = 4096
SYNC_TIMEOUT_S = 2.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared test settings with a small body limit and a short sync timeout."""
    return settings.model_copy(
        update={
            "http_route_max_body_bytes": BODY_LIMIT,
            "http_route_sync_timeout_s": SYNC_TIMEOUT_S,
        }
    )


@pytest.fixture
async def http(served_api: Api) -> httpx.AsyncClient:
    """A client of the running gateway's API with alice's token, and the test scripts."""
    await add_scripts(served_api.store, **SCRIPTS)
    return await served_api.http()


def _run(script: str, sync: bool = False) -> str:
    return f"/w/{WS}/jobs/{'run_wait_result' if sync else 'run'}/p/f/t/{script}"


async def test_run_answers_201_once_the_webhook_job_is_committed(
    served_api: Api, http: httpx.AsyncClient
) -> None:
    queued = await http.post(_run("echo"), json={"a": 1})

    assert queued.status_code == 201
    job = await completed(served_api.store, UUID(queued.text))
    assert (job["trigger_kind"], job["trigger"], job["created_by"]) == (
        "webhook",
        "f/t/echo",
        "alice",
    )
    assert job["result"] == {"a": 1}


async def test_the_token_may_come_in_the_query_and_is_required(
    served_api: Api, http: httpx.AsyncClient
) -> None:
    async with httpx.AsyncClient(base_url=served_api.base_url) as anonymous:
        by_query = await anonymous.post(f"{_run('echo')}?token={served_api.token}", json={})
        missing = await anonymous.post(_run("echo"), json={})

    assert by_query.status_code == 201
    assert missing.status_code == 401


async def test_a_token_scoped_to_another_script_may_not_run_this_one(
    served_api: Api, http: httpx.AsyncClient
) -> None:
    token = await served_api.token_for(OWNER, scopes=["run:script/f/t/respond"])
    scoped = await served_api.http(token)

    assert (await scoped.post(_run("respond"), json={})).status_code == 201
    assert (await scoped.post(_run("echo"), json={})).status_code == 403


async def test_an_idempotency_key_gives_a_retried_post_the_first_job(
    served_api: Api, http: httpx.AsyncClient
) -> None:
    key = {"Idempotency-Key": "delivery-1"}

    first = await http.post(_run("echo"), json={"n": 1}, headers=key)
    retried = await http.post(_run("echo"), json={"n": 2}, headers=key)
    other = await http.post(_run("echo"), json={"n": 3}, headers={"Idempotency-Key": "delivery-2"})
    waited = await http.post(_run("echo", sync=True), json={"n": 4}, headers=key)

    assert first.status_code == retried.status_code == 201
    assert retried.text == first.text != other.text
    assert waited.json() == {"n": 1}
    jobs = await list_jobs(served_api.store, WS, JobFilter(script_path_exact="f/t/echo"))
    assert len(jobs) == 2


async def test_an_empty_or_overlong_idempotency_key_is_refused(http: httpx.AsyncClient) -> None:
    for key in ("", "k" * 256):
        refused = await http.post(_run("echo"), json={}, headers={"Idempotency-Key": key})

        assert refused.status_code == 400
        assert "Idempotency-Key must be 1 to 255 characters" in refused.json()["message"]


async def test_query_options_add_headers_query_values_the_raw_body_and_wrap_it(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.post(
        _run("echo", sync=True),
        params={
            "include_header": "X-Request-Id,x-missing",
            "include_query": "source,absent",
            "source": "crm",
            "raw": "true",
            "wrap_body": "true",
        },
        headers={"X-Request-Id": "r-9"},
        content=b'{"a": 1}',
    )

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "body": {"a": 1},
        "raw_string": '{"a": 1}',
        "x_request_id": "r-9",
        "source": "crm",
    }


async def test_a_preprocessor_gets_the_webhook_event_unless_it_is_skipped(
    http: httpx.AsyncClient,
) -> None:
    with_event = await http.post(
        _run("event", sync=True), params={"q": "1"}, json={"a": 1}, headers={"X-Id": "7"}
    )
    skipped = await http.post(
        _run("event", sync=True), params={"skip_preprocessor": "true"}, json={"a": 1}
    )

    event = with_event.json()["seen"]
    assert event["kind"] == "webhook"
    assert (event["body"], event["raw_string"]) == ({"a": 1}, None)
    assert event["query"] == {"q": "1"}
    assert event["headers"]["x-id"] == "7"
    assert skipped.json() == {"seen": None, "kwargs": {"a": 1}}


async def test_a_legacy_preprocessor_gets_the_body_and_wm_trigger(http: httpx.AsyncClient) -> None:
    answer = await http.post(_run("legacy", sync=True), json={"a": 1})

    assert answer.json() == {"body": {"a": 1}, "wm_trigger": {"kind": "webhook"}}


async def test_bodies_are_parsed_as_on_http_routes(http: httpx.AsyncClient) -> None:
    form = await http.post(_run("echo", sync=True), data={"name": "x", "n": "2"})
    text = await http.post(
        _run("echo", sync=True), content=b"hello", headers={"Content-Type": "text/plain"}
    )
    value = await http.post(_run("echo", sync=True), json=[1, 2])
    unknown = await http.post(
        _run("echo"), content=b"\x00", headers={"Content-Type": "application/octet-stream"}
    )
    broken = await http.post(
        _run("echo"), content=b"{", headers={"Content-Type": "application/json"}
    )
    too_large = await http.post(_run("echo"), json={"pad": "x" * BODY_LIMIT})

    assert form.json() == {"name": "x", "n": "2"}
    assert text.json() == {"raw_string": "hello"}
    assert value.json() == {"body": [1, 2]}
    assert [unknown.status_code, broken.status_code, too_large.status_code] == [415, 400, 413]
    assert "invalid json" in broken.json()["message"]


async def test_get_takes_the_args_as_base64_json_in_the_query(http: httpx.AsyncClient) -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"a": 5}).encode()).decode()

    answer = await http.get(_run("echo", sync=True), params={"payload": payload})

    assert answer.json() == {"a": 5}


async def test_scheduled_in_secs_delays_the_job(served_api: Api, http: httpx.AsyncClient) -> None:
    queued = await http.post(_run("echo"), params={"scheduled_in_secs": "3600"}, json={})

    job = await get_job(served_api.store, WS, UUID(queued.text))
    assert job["type"] == "QueuedJob"
    assert job["scheduled_for"] > job["created_at"]


async def test_a_missing_flow_is_a_404(http: httpx.AsyncClient) -> None:
    for url in (f"/w/{WS}/jobs/run/f/f/t/flow", f"/w/{WS}/jobs/run_wait_result/f/f/t/flow"):
        refused = await http.post(url, json={})

        assert refused.status_code == 404
        assert "flow not found" in refused.json()["message"]


async def test_the_sync_result_is_mapped_and_a_failed_job_is_a_500(
    http: httpx.AsyncClient,
) -> None:
    special = await http.post(
        _run("respond", sync=True),
        json={
            "answer": {
                "windmill_status_code": 201,
                "windmill_content_type": "text/csv",
                "windmill_headers": {"x-rows": "1"},
                "result": "a,b\n",
            }
        },
    )
    failed = await http.post(_run("fail", sync=True), json={})

    assert (special.status_code, special.text) == (201, "a,b\n")
    assert (special.headers["content-type"], special.headers["x-rows"]) == ("text/csv", "1")
    assert failed.status_code == 500
    assert failed.json()["error"]["name"] == "ValueError"


async def test_a_sync_run_past_the_timeout_is_a_504_naming_the_job(
    served_api: Api, http: httpx.AsyncClient
) -> None:
    answer = await http.post(_run("slow", sync=True), json={})

    assert answer.status_code == 504
    [job] = await list_jobs(served_api.store, WS, JobFilter(script_path_exact="f/t/slow"))
    assert job["id"] in answer.json()["message"]


async def test_a_client_that_leaves_cancels_its_job(
    served_api: Api, http: httpx.AsyncClient
) -> None:
    with pytest.raises(httpx.ReadTimeout):
        await http.post(_run("slow", sync=True), json={}, timeout=1.0)

    async def slow_jobs() -> list[dict[str, Any]]:
        return await list_jobs(served_api.store, WS, JobFilter(script_path_exact="f/t/slow"))

    [job] = await eventually(slow_jobs)
    done = await completed(served_api.store, UUID(job["id"]))
    assert (done["status"], done["canceled_reason"]) == ("canceled", "http connection broke")

"""What a route answers by request type, and the jobs it creates."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import httpx
import pytest

from gateway.http_routes.routes import RouteOptions
from gateway.jobs.read import JobFilter, get_job, list_jobs
from gateway.runtime import Gateway

from ..support import WS, completed, eventually
from .conftest import Served, served_routes


async def _answer(served: Served, answer: Any) -> httpx.Response:
    """The response of a sync route whose job returns `answer`."""
    await served.add_route("respond", script="respond")
    return await served.client.post("/respond", json={"answer": answer})


async def test_async_answers_201_with_the_committed_job_id(served: Served) -> None:
    path = await served.add_route("later", request_type="async")

    response = await served.client.post("/later", json={"a": 1})

    assert response.status_code == 201
    assert response.headers["content-type"].startswith("text/plain")
    job = await completed(served.store, UUID(response.text))
    assert (job["trigger_kind"], job["trigger"]) == ("http", path)
    assert job["created_by"] == f"HTTP-{path}"
    assert (job["permissioned_as"], job["email"]) == ("u/alice", "alice@example.com")
    assert job["args"] == {"a": 1}
    assert job["result"] == {"a": 1}


async def test_retry_and_error_handler_come_from_the_trigger(served: Served) -> None:
    await served.add_route(
        "fragile",
        script="fail",
        retry={"constant": {"attempts": 1, "seconds": 0}},
        error_handler_path="f/t/echo",
    )

    response = await served.client.post("/fragile", json={})

    assert response.status_code == 422
    [job] = await list_jobs(served.store, WS, JobFilter(trigger_kind="http"))
    assert job["job_kind"] == "singlestepflow"
    assert job["raw_flow"]["modules"][0]["retry"]["constant"]["attempts"] == 1
    assert job["raw_flow"]["failure_module"]["value"]["path"] == "f/t/echo"


async def test_sync_answers_the_result_as_json_with_cors(served: Served) -> None:
    response = await _answer(served, {"total": 3})

    assert response.status_code == 200
    assert response.json() == {"total": 3}
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-methods"] == (
        "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS"
    )


async def test_a_null_result_is_204(served: Served) -> None:
    response = await _answer(served, None)

    assert (response.status_code, response.content) == (204, b"")


async def test_a_failed_job_is_422_with_its_error(served: Served) -> None:
    await served.add_route("broken", script="fail")

    response = await served.client.post("/broken", json={})

    assert response.status_code == 422
    assert "it failed" in response.json()["error"]["message"]


@pytest.mark.parametrize("family", ["windmill", "wm"])
async def test_status_code_and_content_type_keys_shape_the_response(
    served: Served, family: str
) -> None:
    response = await _answer(
        served,
        {
            f"{family}_status_code": 202,
            f"{family}_content_type": "text/csv",
            "result": "a,b\n1,2\n",
        },
    )

    assert response.status_code == 202
    assert response.headers["content-type"] == "text/csv"
    assert response.text == "a,b\n1,2\n"


async def test_a_content_type_with_a_non_string_result_sends_its_json(served: Served) -> None:
    response = await _answer(
        served, {"windmill_content_type": "application/vnd.api+json", "result": {"x": [1]}}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.api+json"
    assert response.text == '{"x":[1]}'


@pytest.mark.parametrize("family", ["windmill", "wm"])
async def test_headers_key_adds_headers_and_may_override_cors(served: Served, family: str) -> None:
    response = await _answer(
        served,
        {
            f"{family}_headers": {
                "X-Trace": "abc",
                "Access-Control-Allow-Origin": "https://example.com",
            },
            "result": {"ok": True},
        },
    )

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert response.headers["x-trace"] == "abc"
    assert response.headers["access-control-allow-origin"] == "https://example.com"
    assert response.headers["access-control-allow-headers"] == "content-type, authorization"


async def test_special_keys_without_a_result_answer_204(served: Served) -> None:
    response = await _answer(served, {"windmill_headers": {"x-done": "yes"}})

    assert (response.status_code, response.content) == (204, b"")
    assert response.headers["x-done"] == "yes"


async def test_a_status_code_with_headers_and_no_body(served: Served) -> None:
    response = await _answer(served, {"wm_status_code": 302, "wm_headers": {"location": "/next"}})

    assert (response.status_code, response.content) == (302, b"")
    assert response.headers["location"] == "/next"


async def test_an_invalid_status_code_is_a_500_naming_it(served: Served) -> None:
    response = await _answer(served, {"windmill_status_code": 42, "result": 1})

    assert response.status_code == 500
    assert response.json() == {"error": "the job's windmill_status_code 42 is not an HTTP status"}


async def test_sync_timeout_is_504_with_the_job_id(gateway: Gateway) -> None:
    async with served_routes(gateway, RouteOptions(sync_timeout_s=0.5)) as served:
        await served.add_route("slow", script="slow")

        response = await served.client.post("/slow", json={})

    assert response.status_code == 504
    job_id = UUID(response.json()["job_id"])
    assert (await get_job(served.store, WS, job_id))["type"] == "QueuedJob"


async def test_a_client_that_leaves_cancels_its_job(served: Served) -> None:
    path = await served.add_route("abandoned", script="slow")

    with pytest.raises(httpx.ReadTimeout):
        await served.client.post("/abandoned", json={}, timeout=1.0)

    async def job_of_route() -> list[dict[str, Any]]:
        return await list_jobs(served.store, WS, JobFilter(trigger=path))

    [job] = await eventually(job_of_route)
    done = await completed(served.store, UUID(job["id"]))
    assert done["status"] == "canceled"
    assert done["canceled_reason"] == "http connection broke"


async def test_idempotency_key_gives_a_retried_request_the_first_job(served: Served) -> None:
    await served.add_route("pay", request_type="async")
    key = {"Idempotency-Key": "order-17"}

    first = await served.client.post("/pay", json={"n": 1}, headers=key)
    retried = await served.client.post("/pay", json={"n": 2}, headers=key)
    other = await served.client.post("/pay", json={"n": 3}, headers={"Idempotency-Key": "order-18"})

    assert first.status_code == retried.status_code == 201
    assert retried.text == first.text
    assert other.text != first.text
    assert (await completed(served.store, UUID(first.text)))["result"] == {"n": 1}


async def test_a_retried_sync_request_gets_the_first_result(served: Served) -> None:
    await served.add_route("once")
    key = {"Idempotency-Key": "k1"}

    first = await served.client.post("/once", json={"n": 1}, headers=key)
    retried = await served.client.post("/once", json={"n": 2}, headers=key)

    assert first.json() == retried.json() == {"n": 1}


async def test_suspended_route_parks_the_job_and_answers_200_text(served: Served) -> None:
    path = await served.add_route("parked", request_type="sync", mode="suspended")

    # The second job is written pinned to the script version the first request resolved.
    for n in (1, 2):
        response = await served.client.post("/parked", json={"a": n})

        assert response.status_code == 200
        assert response.text == (
            f"Trigger {path} is in suspended mode, jobs are added to the queue but suspended"
        )
    jobs = await list_jobs(served.store, WS, JobFilter(trigger=path))
    assert [job["job_kind"] for job in jobs] == ["unassigned_script"] * 2


async def test_sync_sse_streams_updates_then_the_result(served: Served) -> None:
    await served.add_route("stream", request_type="sync_sse")

    async with served.client.stream("POST", "/stream", json={"a": 1}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        events = [
            json.loads(line.removeprefix("data: "))
            async for line in response.aiter_lines()
            if line.startswith("data: ")
        ]

    assert events[0]["type"] == "update"
    assert events[0]["completed"] is False
    assert events[-1] == {"type": "update", "completed": True, "only_result": {"a": 1}}

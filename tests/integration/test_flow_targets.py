"""Flows as targets on a running gateway: run by path (`run/f`, `run_wait_result/f`), behind an
HTTP route (sync and async) and a NATS trigger, each ending in the flow's result; and the steps
of a flow job as the `gateway jobs get` command prints them, after `jobs run --flow`."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import httpx
import nats
import pytest

from gateway.http_routes.api.tokens import issue_token
from gateway.jobs.read import JobFilter, list_jobs
from gateway.runtime import Gateway
from gateway.settings import Settings

from ..e2e.cli import gateway_env, run_gateway
from .listeners.brokers import NATS_URL, nats_address
from .support import OWNER, WS, add_scripts, completed, eventually

pytestmark = pytest.mark.integration


def step(module_id: str, code: str, **inputs: str) -> dict[str, Any]:
    """A python3 step whose inputs are JavaScript expressions."""
    return {
        "id": module_id,
        "value": {
            "type": "rawscript",
            "language": "python3",
            "content": code,
            "input_transforms": {
                name: {"type": "javascript", "expr": expr} for name, expr in inputs.items()
            },
        },
    }


ADD_THEN_TIMES_TEN = {
    "modules": [
        step("a", "def main(n: int):\n    return n + 1\n", n="flow_input.n"),
        step("b", "def main(x: int):\n    return x * 10\n", x="results.a"),
    ]
}
N_SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}}
SHOUT = {
    "modules": [step("a", "def main(msg: str):\n    return msg.upper()\n", msg="flow_input.msg")]
}
MSG_SCHEMA = {"type": "object", "properties": {"msg": {"type": "string"}}}


@pytest.fixture
async def running(settings: Settings) -> AsyncIterator[Gateway]:
    """A gateway serving HTTP, running jobs and claiming triggers quickly."""
    fast = settings.model_copy(update={"lease_claim_interval_s": 0.5, "lease_ping_interval_s": 0.3})
    async with Gateway.running(fast) as gateway:
        yield gateway


@pytest.fixture
async def api(running: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the running gateway's `/api`, as alice."""
    await add_scripts(running.store)
    async with running.store.transaction() as tx:
        token = await issue_token(tx, OWNER, WS, label="test")
    async with httpx.AsyncClient(
        base_url=f"{running.settings.local_url(running.http_port)}/api",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    ) as client:
        yield client


async def create_flow(
    api: httpx.AsyncClient, path: str, value: dict[str, Any], schema: dict[str, Any]
) -> None:
    """Save a flow through the API."""
    body = {"path": path, "summary": "", "value": value, "schema": schema}
    created = await api.post(f"/w/{WS}/flows/create", json=body)
    assert created.status_code == 201, created.text


async def test_run_f_runs_the_latest_version_and_answers_its_result(
    running: Gateway, api: httpx.AsyncClient
) -> None:
    await create_flow(api, "f/t/calc", ADD_THEN_TIMES_TEN, N_SCHEMA)

    answered = await api.post(f"/w/{WS}/jobs/run_wait_result/f/f/t/calc", json={"n": 4})
    assert (answered.status_code, answered.json()) == (200, 50)

    key = {"Idempotency-Key": uuid.uuid4().hex}
    queued = await api.post(f"/w/{WS}/jobs/run/f/f/t/calc", json={"n": 1}, headers=key)
    again = await api.post(f"/w/{WS}/jobs/run/f/f/t/calc", json={"n": 1}, headers=key)
    assert queued.status_code == 201 and again.text == queued.text
    done = await completed(running.store, UUID(queued.text))
    assert (done["status"], done["result"]) == ("success", 20)
    assert (done["job_kind"], done["script_path"]) == ("flow", "f/t/calc")
    assert (done["trigger_kind"], done["trigger"]) == ("webhook", "f/t/calc")

    missing = await api.post(f"/w/{WS}/jobs/run/f/f/t/none", json={})
    assert missing.status_code == 404


async def test_an_http_route_runs_a_flow_sync_and_async(
    running: Gateway, api: httpx.AsyncClient
) -> None:
    await create_flow(api, "f/t/calc", ADD_THEN_TIMES_TEN, N_SCHEMA)
    route = f"calc_{uuid.uuid4().hex[:8]}"
    for path, request_type in (("f/t/calc_sync", "sync"), ("f/t/calc_async", "async")):
        body = {
            "path": path,
            "script_path": "f/t/calc",
            "is_flow": True,
            "route_path": f"{route}/{request_type}",
            "http_method": "post",
            "request_type": request_type,
            "authentication_method": "none",
        }
        created = await api.post(f"/w/{WS}/http_triggers/create", json=body)
        assert created.status_code == 201, created.text

    async def answered() -> httpx.Response | None:
        response = await api.post(f"/r/{route}/sync", json={"n": 2})
        return response if response.status_code != 404 else None

    sync = await eventually(answered)
    assert (sync.status_code, sync.json()) == (200, 30)
    accepted = await api.post(f"/r/{route}/async", json={"n": 6})
    assert accepted.status_code == 201
    done = await completed(running.store, UUID(accepted.text))
    assert (done["result"], done["trigger"], done["trigger_kind"]) == (
        70,
        "f/t/calc_async",
        "http",
    )


async def test_a_nats_message_runs_a_flow(running: Gateway, api: httpx.AsyncClient) -> None:
    host, port = nats_address()
    await create_flow(api, "f/t/shout", SHOUT, MSG_SCHEMA)
    resource = {
        "path": "u/alice/nats",
        "resource_type": "nats",
        "value": {"servers": [f"{host}:{port}"], "auth": {"label": "NO_AUTH"}},
    }
    assert (await api.post(f"/w/{WS}/resources/create", json=resource)).status_code == 201
    subject = f"gwtest.flow.{uuid.uuid4().hex[:8]}"
    trigger = {
        "path": "u/alice/shout_nats",
        "script_path": "f/t/shout",
        "is_flow": True,
        "nats_resource_path": "u/alice/nats",
        "subjects": [subject],
        "use_jetstream": False,
    }
    created = await api.post(f"/w/{WS}/nats_triggers/create", json=trigger)
    assert created.status_code == 201, created.text

    async def listening() -> bool:
        got = (await api.get(f"/w/{WS}/nats_triggers/get/u/alice/shout_nats")).json()
        return bool(got.get("server_id")) and got.get("error") is None

    await eventually(listening)
    publisher = await nats.connect(NATS_URL)
    try:

        async def flow_jobs() -> list[dict[str, Any]]:
            await publisher.publish(subject, b"hello flow")
            await publisher.flush()
            where = JobFilter(trigger="u/alice/shout_nats", per_page=10)
            return await list_jobs(running.store, WS, where)

        # Core NATS delivers at most once: publish until a message arrives while subscribed.
        [job, *_] = await eventually(flow_jobs, every_s=0.5)
    finally:
        await publisher.close()
    done = await completed(running.store, UUID(job["id"]))
    assert (done["status"], done["result"], done["job_kind"]) == ("success", "HELLO FLOW", "flow")


async def test_the_cli_runs_a_flow_and_prints_its_steps(
    running: Gateway, api: httpx.AsyncClient
) -> None:
    await create_flow(api, "f/t/calc", ADD_THEN_TIMES_TEN, N_SCHEMA)
    master_key = running.settings.master_key
    assert master_key is not None
    env = gateway_env(
        running.settings.database_url, GATEWAY_MASTER_KEY=master_key.get_secret_value()
    )
    run = ("jobs", "run", "--flow", "f/t/calc", "-a", "n=1", "--wait", "--json")

    ran = await asyncio.to_thread(run_gateway, *run, "--workspace", WS, env=env)
    assert ran.returncode == 0, ran.stderr
    done = json.loads(ran.stdout)
    assert (done["result"], done["job_kind"]) == (20, "flow")
    command = ("jobs", "get", done["id"], "--workspace", WS)
    printed = await asyncio.to_thread(run_gateway, *command, env=env)
    as_json = await asyncio.to_thread(run_gateway, *command, "--json", env=env)

    assert printed.returncode == 0, printed.stderr
    lines = [line.split() for line in printed.stdout.splitlines()]
    steps = [line for line in lines if line and line[0] in ("a", "b")]
    assert [(line[0], line[1]) for line in steps] == [("a", "Success"), ("b", "Success")]
    assert all(UUID(line[2]) for line in steps)
    status = json.loads(as_json.stdout)["flow_status"]
    assert [(m["id"], m["type"]) for m in status["modules"]] == [
        ("a", "Success"),
        ("b", "Success"),
    ]

"""Python jobs using the `wmill` client against the gateway that runs them: the executor gives
each job a token (WM_TOKEN), its workspace and the gateway's URL (BASE_INTERNAL_URL)."""

from __future__ import annotations

import json

import pytest

from ..support import WS
from .conftest import Api, free_port

READ_SECRET = """
import wmill

def main():
    return {"secret": wmill.get_variable("u/alice/secret")}
"""
COUNT_IN_STATE = """
import wmill

def main(value: int):
    before = wmill.get_state()
    wmill.set_state({"count": value})
    return {"before": before, "after": wmill.get_state()}
"""
RUN_ANOTHER = """
import wmill

def main():
    return wmill.run_script_by_path("f/t/hello", args={"name": "nested"}, timeout=60)
"""


@pytest.fixture
def http_port() -> int:
    """A fixed port: the executor hands the gateway's URL to jobs before it binds."""
    return free_port()


async def save_and_run(api: Api, path: str, content: str, args: dict[str, object]) -> object:
    """Save a python3 script and run it with `run_wait_result`; its result."""
    http = await api.http()
    saved = await http.post(
        f"/w/{WS}/scripts/create",
        json={"path": path, "content": content, "language": "python3", "summary": ""},
    )
    assert saved.status_code == 201, saved.text
    ran = await http.post(f"/w/{WS}/jobs/run_wait_result/p/{path}", json=args)
    assert ran.status_code == 200, ran.text
    return json.loads(ran.content)


async def test_job_reads_a_secret_variable_with_wmill(served_api: Api) -> None:
    created = await (await served_api.http()).post(
        f"/w/{WS}/variables/create",
        json={"path": "u/alice/secret", "value": "s3cret", "is_secret": True, "description": ""},
    )
    assert created.status_code == 201
    result = await save_and_run(served_api, "f/t/read_secret", READ_SECRET, {})
    assert result == {"secret": "s3cret"}
    assert "variables.decrypt_secret" in await served_api.audit_operations()


async def test_wmill_state_round_trips_between_runs(served_api: Api) -> None:
    first = await save_and_run(served_api, "f/t/counter", COUNT_IN_STATE, {"value": 1})
    assert first == {"before": None, "after": {"count": 1}}
    second = await save_and_run(served_api, "f/t/counter", COUNT_IN_STATE, {"value": 2})
    assert second == {"before": {"count": 1}, "after": {"count": 2}}
    state = await (await served_api.http()).get(f"/w/{WS}/resources/get/u/alice/f/t/counter")
    assert state.json()["resource_type"] == "state"


async def test_job_runs_another_script_with_wmill(served_api: Api) -> None:
    result = await save_and_run(served_api, "f/t/run_another", RUN_ANOTHER, {})
    assert result == {"hello": "nested"}

"""The `gateway` command end to end: apply, run, list, inspect, and its errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .cli import gateway_env, run_gateway

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    return tmp_path


def test_apply_is_idempotent_and_jobs_complete(project: Path) -> None:
    env = gateway_env(f"sqlite:///{project / 'gateway.db'}", GATEWAY_EXECUTOR_SLOTS="2")
    first = run_gateway("apply", "-f", "examples/gateway.yaml", env=env, cwd=project)
    assert first.returncode == 0, first.stderr
    assert "created   script     f/examples/hello" in first.stdout
    assert "created   flow       f/examples/greet_flow" in first.stdout
    second = run_gateway("apply", "-f", "examples/gateway.yaml", env=env, cwd=project)
    assert second.stdout.strip().endswith("0 change(s), 8 unchanged")

    # No server runs: `jobs run` queues, `worker` would run it. Run it through a one-off serve.
    queued = run_gateway("jobs", "run", "f/examples/hello", "-a", "name=Ada", env=env, cwd=project)
    assert queued.returncode == 0, queued.stderr
    job_id = queued.stdout.strip()
    listed = run_gateway("jobs", "list", "--json", env=env, cwd=project)
    (job,) = json.loads(listed.stdout)
    assert job["id"] == job_id
    assert job["type"] == "QueuedJob"


def test_run_and_wait_prints_the_result(project: Path) -> None:
    env = gateway_env(f"sqlite:///{project / 'gateway.db'}")
    run_gateway("apply", "-f", "examples/gateway.yaml", env=env, cwd=project)
    from .cli import start_gateway

    server = start_gateway("worker", env=env, log=project / "worker.log")
    try:
        done = run_gateway(
            "jobs", "run", "f/examples/hello", "-a", "name=Ada", "--wait", "--json",
            env=env, cwd=project,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["result"] == {"greeting": "Hello Ada.", "letters": 3}
    logs = run_gateway("jobs", "logs", job["id"], env=env, cwd=project)
    assert "Hello Ada." in logs.stdout
    table = run_gateway("jobs", "list", env=env, cwd=project).stdout
    assert job["id"] in table and "success" in table


def test_malformed_declaration_names_file_and_line(project: Path) -> None:
    bad = project / "bad.yaml"
    bad.write_text(
        "workspace: demo\n"
        "triggers:\n"
        "  - kind: kafka\n"
        "    path: u/admin/orders\n"
        "    script_path: f/examples/hello\n"
        "    topics: [orders]\n"
        "    retry: {exponential: {attempts: 2, seconds: 0}}\n"
    )
    env = gateway_env(f"sqlite:///{project / 'gateway.db'}")
    result = run_gateway("apply", "-f", str(bad), env=env, cwd=project)
    assert result.returncode == 1
    assert f"{bad}:3:" in result.stderr or f"{bad}:7:" in result.stderr
    assert "exponential.seconds" in result.stderr
    listed = run_gateway("triggers", "list", "--json", env=env, cwd=project)
    assert json.loads(listed.stdout) == []  # nothing was applied


def test_yaml_syntax_error_is_reported_with_its_line(project: Path) -> None:
    bad = project / "broken.yaml"
    bad.write_text("workspace: demo\nscripts:\n  - path: [unclosed\n")
    result = run_gateway("apply", "-f", str(bad), env=gateway_env("sqlite:///x.db"), cwd=project)
    assert result.returncode == 1
    assert f"{bad}:" in result.stderr and "invalid YAML" in result.stderr


def test_unknown_database_url_stops_with_one_line(project: Path) -> None:
    result = run_gateway("serve", env=gateway_env("mysql://localhost/x"), cwd=project)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "unknown database URL" in lines[0]


def test_unreachable_database_stops_with_one_line(project: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=1"
    result = run_gateway("serve", env=gateway_env(url), cwd=project)
    assert result.returncode == 1
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("gateway:")]
    assert len(lines) == 1
    assert "cannot connect" in lines[0]

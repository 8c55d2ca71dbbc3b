"""`LatestScripts` keeps the last resolved version of each route script path, and `is_plain` says
which targets' jobs the pinned statement may write."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from gateway.http_routes.routes.pinned_jobs import LatestScripts, is_plain
from gateway.jobs.model import ErrorHandler
from gateway.jobs.retry import RetryPolicy
from gateway.listeners.lease import TriggerRef
from gateway.scripts import Script
from gateway.triggers.args import RunnableShape
from gateway.triggers.runnables import Runnable, TriggerTarget


def _runnable(path: str, version: int, workspace_id: str = "ws") -> Runnable:
    script = Script(
        workspace_id=workspace_id,
        path=path,
        hash=version,
        content="def main():\n    pass\n",
        language="python3",
        schema={},
        created_by="alice",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return Runnable(script, RunnableShape())


TARGET = TriggerTarget(
    trigger=TriggerRef("http", "ws", "f/t/route"),
    script_path="f/t/echo",
    is_flow=False,
    permissioned_as="u/alice",
    email="alice@example.com",
    retry=None,
    error_handler=None,
    suspended=False,
)


def test_a_newer_resolution_replaces_the_version_kept_for_its_path() -> None:
    latest = LatestScripts()
    latest.put(_runnable("f/t/echo", 1))
    latest.put(_runnable("f/t/echo", 2))

    kept = latest.get("ws", "f/t/echo")

    assert kept is not None and kept.script.hash == 2


def test_paths_are_kept_per_workspace_and_can_be_forgotten() -> None:
    latest = LatestScripts()
    latest.put(_runnable("f/t/echo", 1, workspace_id="a"))
    latest.put(_runnable("f/t/echo", 2, workspace_id="b"))

    latest.forget("a", "f/t/echo")

    assert latest.get("a", "f/t/echo") is None
    kept = latest.get("b", "f/t/echo")
    assert kept is not None and kept.script.hash == 2


def test_the_least_recently_used_path_goes_first_when_full() -> None:
    latest = LatestScripts(capacity=2)
    latest.put(_runnable("f/t/old", 1))
    latest.put(_runnable("f/t/used", 2))
    latest.get("ws", "f/t/old")

    latest.put(_runnable("f/t/new", 3))

    assert latest.get("ws", "f/t/used") is None
    assert latest.get("ws", "f/t/old") is not None
    assert latest.get("ws", "f/t/new") is not None


def test_only_script_targets_without_wrapper_or_handler_are_plain() -> None:
    assert is_plain(TARGET)
    assert is_plain(replace(TARGET, suspended=True))
    retry = RetryPolicy.parse({"constant": {"attempts": 2, "seconds": 1}})
    assert not is_plain(replace(TARGET, retry=retry))
    assert not is_plain(replace(TARGET, error_handler=ErrorHandler("f/t/handler", {})))
    assert not is_plain(replace(TARGET, is_flow=True))

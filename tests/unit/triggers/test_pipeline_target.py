"""What a trigger row says about its jobs, and the shape of the script they run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.executor.signature import infer_schema
from gateway.jobs.retry import RetryPolicyError
from gateway.listeners.lease import TriggerRef
from gateway.scripts import Script
from gateway.triggers.args import ArgsError
from gateway.triggers.event import Event
from gateway.triggers.runnables import (
    Runnable,
    RunnableShapes,
    TriggerTarget,
    shape_of_script,
)
from tests.unit.triggers.jobs import job_of

ORDERS = TriggerRef("kafka", "acme", "u/ops/orders")


def row(**columns: Any) -> dict[str, Any]:
    """A trigger row with the columns job building reads."""
    return {
        "script_path": "f/jobs/orders",
        "is_flow": False,
        "edited_by": "ops",
        "email": "ops@example.com",
        "permissioned_as": "u/deployer",
        "retry": None,
        "error_handler_path": None,
        "error_handler_args": None,
        "mode": "enabled",
        **columns,
    }


def script(content: str, version: int = 1) -> Script:
    """A stored python3 script version."""
    signature = infer_schema("python3", content)
    return Script(
        workspace_id="acme",
        path="f/jobs/orders",
        hash=version,
        content=content,
        language="python3",
        schema=signature.schema,
        created_by="ops",
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
        has_preprocessor=signature.has_preprocessor,
    )


def runnable(content: str) -> Runnable:
    found = script(content)
    return Runnable(found, shape_of_script(found))


RECORD = Event("kafka", b'{"a":1}', {"topic": "orders"}, "orders/0/42", b'{"a":1}')


def test_a_job_carries_the_trigger_identity_and_a_namespaced_dedup_key() -> None:
    job = job_of(
        TriggerTarget.from_row(ORDERS, row()), RECORD, runnable("def main(msg):\n  pass\n")
    )

    assert job.args == {"msg": '{"a":1}'}
    assert (job.trigger, job.trigger_kind) == ("u/ops/orders", "kafka")
    assert job.created_by == "kafka-u/ops/orders"
    assert (job.permissioned_as, job.permissioned_as_email) == ("u/deployer", "ops@example.com")
    assert job.dedup_key == "kafka:u/ops/orders:orders/0/42"
    assert (job.runnable_path, job.script_hash) == ("f/jobs/orders", 1)
    assert not job.suspended and not job.apply_preprocessor


def test_an_event_without_identity_has_no_dedup_key() -> None:
    event = Event("kafka", b"x", {}, None, b"x")
    job = job_of(TriggerTarget.from_row(ORDERS, row()), event, runnable("def main():\n  pass\n"))
    assert job.dedup_key is None


def test_websocket_jobs_are_created_by_ws_and_run_as_the_editor_without_permissioned_as() -> None:
    feed = TriggerRef("websocket", "acme", "u/ops/feed")
    target = TriggerTarget.from_row(feed, row(permissioned_as=None))
    assert target.created_by == "ws-u/ops/feed"
    assert target.permissioned_as == "u/ops"


def test_retry_error_handler_and_suspended_mode_come_from_the_row() -> None:
    target = TriggerTarget.from_row(
        ORDERS,
        row(
            retry={"constant": {"attempts": 2, "seconds": 5}},
            error_handler_path="script/f/ops/on_error",
            error_handler_args={"channel": "#ops"},
            mode="suspended",
        ),
    )
    assert target.retry is not None and target.retry.constant.attempts == 2
    assert target.error_handler is not None
    assert (target.error_handler.path, dict(target.error_handler.args)) == (
        "f/ops/on_error",
        {"channel": "#ops"},
    )
    assert target.suspended


def test_an_invalid_stored_retry_is_reported() -> None:
    with pytest.raises(RetryPolicyError):
        TriggerTarget.from_row(ORDERS, row(retry={"constant": {"attempts": -1}}))


def test_args_that_are_not_json_are_refused() -> None:
    event = Event("kafka", b"x", {"offset": float("nan")}, "k", b"x")
    target = TriggerTarget.from_row(ORDERS, row())
    with pytest.raises(ArgsError, match="not JSON"):
        job_of(target, event, runnable("def preprocessor(event):\n  pass\ndef main():\n  pass\n"))


def test_the_shape_reads_the_preprocessor_parameters_from_the_source() -> None:
    legacy = runnable("def preprocessor(msg, wm_trigger):\n  pass\ndef main(x):\n  pass\n")
    assert legacy.shape.has_preprocessor
    assert legacy.shape.preprocessor_params == ("msg", "wm_trigger")
    assert legacy.shape.main_params == frozenset({"x"})
    job = job_of(TriggerTarget.from_row(ORDERS, row()), RECORD, legacy)
    assert job.apply_preprocessor
    assert job.args == {
        "msg": '{"a":1}',
        "wm_trigger": {"kind": "kafka", "kafka": {"topic": "orders"}},
    }


def test_shapes_are_computed_once_per_script_version_and_evicted_oldest_first() -> None:
    shapes = RunnableShapes(capacity=2)
    first, second, third = (script("def main(x):\n  pass\n", version) for version in (1, 2, 3))

    first_shape = shapes.shape_of(first)
    second_shape = shapes.shape_of(second)
    assert shapes.shape_of(first) is first_shape  # and now the most recently used
    shapes.shape_of(third)  # evicts version 2

    assert shapes.shape_of(first) is first_shape
    assert shapes.shape_of(second) is not second_shape

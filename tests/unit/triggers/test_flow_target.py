"""A trigger whose target is a flow: the job pins the flow version, the args follow the flow's
schema and preprocessor module, and the trigger's retry and error handler are not used."""

from __future__ import annotations

from typing import Any

from gateway.flow_versions import FlowVersion
from gateway.listeners.lease import TriggerRef
from gateway.triggers.event import Event
from gateway.triggers.runnables import FlowRunnable, TriggerTarget, shape_of_flow
from tests.unit.triggers.jobs import job_of

ORDERS = TriggerRef("kafka", "acme", "u/ops/orders")
RECORD = Event("kafka", b'{"a":1}', {"topic": "orders"}, "orders/0/42", b'{"a":1}')
STEP = {"id": "a", "value": {"type": "identity"}}


def flow(value: dict[str, Any], schema: dict[str, Any] | None = None) -> FlowRunnable:
    """Version 7 of flow `f/flows/orders`."""
    version = FlowVersion("acme", "f/flows/orders", 7, value, schema)
    return FlowRunnable(version, shape_of_flow(version))


def flow_target(**columns: Any) -> TriggerTarget:
    """A trigger row targeting the flow, with `columns` changed."""
    row = {
        "script_path": "f/flows/orders",
        "is_flow": True,
        "edited_by": "ops",
        "email": "ops@example.com",
        "permissioned_as": "u/deployer",
        "retry": None,
        "error_handler_path": None,
        "error_handler_args": None,
        "mode": "enabled",
        **columns,
    }
    return TriggerTarget.from_row(ORDERS, row)


def test_a_flow_job_pins_the_version_and_ignores_retry_and_error_handler() -> None:
    target = flow_target(
        retry={"constant": {"attempts": 2, "seconds": 1}}, error_handler_path="f/ops/on_error"
    )
    value = {"modules": [STEP]}

    job = job_of(target, RECORD, flow(value))

    assert (job.runnable_path, job.flow_value, job.flow_version) == ("f/flows/orders", value, 7)
    assert (job.script_hash, job.retry, job.error_handler) == (None, None, None)
    assert (job.trigger, job.trigger_kind) == ("u/ops/orders", "kafka")
    assert job.dedup_key == "kafka:u/ops/orders:orders/0/42"


def test_the_flow_schema_chooses_the_arg_format() -> None:
    by_msg = flow({"modules": [STEP]}, {"properties": {"msg": {"type": "string"}}})
    by_payload = flow({"modules": [STEP]}, {"properties": {"payload": {"type": "string"}}})

    assert job_of(flow_target(), RECORD, by_msg).args == {"msg": '{"a":1}'}
    assert job_of(flow_target(), RECORD, by_payload).args == {"payload": "eyJhIjoxfQ=="}


def test_a_preprocessor_module_gets_the_event_with_its_trigger_info() -> None:
    preprocessor = {
        "id": "preprocessor",
        "value": {
            "type": "rawscript",
            "language": "python3",
            "content": "def preprocessor(event):\n    return event\n",
            "input_transforms": {},
        },
    }
    runnable = flow({"modules": [STEP], "preprocessor_module": preprocessor})

    job = job_of(flow_target(), RECORD, runnable)

    assert runnable.shape.has_preprocessor and job.apply_preprocessor
    assert job.args == {"event": {"kind": "kafka", "payload": "eyJhIjoxfQ==", "topic": "orders"}}


def test_a_legacy_preprocessor_module_gets_wm_trigger() -> None:
    legacy = {
        "id": "preprocessor",
        "value": {
            "type": "rawscript",
            "language": "python3",
            "content": "def preprocessor(msg, wm_trigger):\n    return {'msg': msg}\n",
            "input_transforms": {},
        },
    }

    job = job_of(flow_target(), RECORD, flow({"modules": [STEP], "preprocessor_module": legacy}))

    assert job.args == {
        "msg": '{"a":1}',
        "wm_trigger": {"kind": "kafka", "kafka": {"topic": "orders"}},
    }

"""parse_flow: the OpenFlow subset the engine runs, and the errors naming the JSON path."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import InvalidInput
from gateway.flows import parse_flow
from gateway.flows.model import Transform


def raw(module_id: str = "a", **value: Any) -> dict[str, Any]:
    return {
        "id": module_id,
        "value": {
            "type": "rawscript",
            "language": "python3",
            "content": "def main(): pass",
            **value,
        },
    }


def test_every_supported_module_type_parses() -> None:
    flow = parse_flow(
        {
            "modules": [
                raw("a", input_transforms={"x": {"type": "javascript", "expr": "flow_input.x"}}),
                {"id": "b", "value": {"type": "script", "path": "f/x/s", "input_transforms": {}}},
                {"id": "c", "value": {"type": "flow", "path": "f/x/sub"}},
                {
                    "id": "d",
                    "value": {
                        "type": "forloopflow",
                        "iterator": {"type": "javascript", "expr": "results.a"},
                        "parallel": True,
                        "parallelism": 3,
                        "skip_failures": True,
                        "modules": [raw("d1")],
                    },
                },
                {
                    "id": "e",
                    "value": {
                        "type": "branchone",
                        "branches": [{"expr": "true", "modules": [raw("e1")]}],
                        "default": [raw("e2")],
                    },
                },
                {
                    "id": "f",
                    "value": {
                        "type": "branchall",
                        "parallel": True,
                        "branches": [{"skip_failure": True, "modules": [raw("f1")]}],
                    },
                },
                {
                    "id": "g",
                    "value": {"type": "identity"},
                    "retry": {"constant": {"attempts": 2, "seconds": 1}},
                    "stop_after_if": {"expr": "result === 1", "skip_if_stopped": True},
                    "sleep": {"type": "static", "value": 2},
                },
            ],
            "failure_module": raw("failure"),
            "preprocessor_module": raw("preprocessor"),
        }
    )
    assert [m.type for m in flow.modules] == [
        "rawscript", "script", "flow", "forloopflow", "branchone", "branchall", "identity",
    ]  # fmt: skip
    loop = flow.modules[3]
    assert (loop.parallel, loop.parallelism, loop.skip_failures) == (True, 3, True)
    assert loop.iterator == Transform(expr="results.a")
    assert flow.modules[4].default[0].id == "e2"
    assert flow.modules[5].branches[0].skip_failure is True
    last = flow.modules[6]
    assert last.retry is not None and last.retry.max_attempts == 3
    assert last.stop_after_if is not None and last.stop_after_if.skip_if_stopped
    assert last.sleep == Transform(static=2)
    assert flow.failure_module is not None and flow.preprocessor_module is not None


@pytest.mark.parametrize(
    ("flow", "field", "reason"),
    [
        (
            {"modules": [raw("a"), raw("b"), {"id": "c", "value": {"type": "graphql"}}]},
            "modules[2].value.type",
            "'graphql' is not supported; supported: rawscript, script",
        ),
        (
            {"modules": [{**raw("a"), "suspend": {"required_events": 1}}]},
            "modules[0].suspend",
            "suspend",
        ),
        ({"modules": [raw("a", language="deno")]}, "modules[0].value.language", "'deno'"),
        ({"modules": [raw("a"), raw("a")]}, "modules[1].id", "'a' is used twice"),
        (
            {"modules": [raw("a", input_transforms={"x": {"type": "magic"}})]},
            "modules[0].value.input_transforms.x.type",
            "'magic' is not supported",
        ),
        (
            {"modules": [{**raw("a"), "retry": {"constant": {"attempts": -1}}}]},
            "modules[0].retry",
            "retry.constant.attempts",
        ),
        (
            {
                "modules": [
                    {
                        "id": "l",
                        "value": {
                            "type": "forloopflow",
                            "iterator": {"type": "static", "value": []},
                            "modules": [{"id": "in", "value": {"type": "whileloopflow"}}],
                        },
                    }
                ]
            },
            "modules[0].value.modules[0].value.type",
            "'whileloopflow' is not supported",
        ),
        (
            {"modules": [{"id": "l", "value": {"type": "forloopflow", "modules": []}}]},
            "modules[0].value.iterator",
            "iterator",
        ),
        (
            {
                "modules": [
                    {"id": "b", "value": {"type": "branchone", "branches": [{"modules": []}]}}
                ]
            },
            "modules[0].value.branches[0].expr",
            "expr",
        ),
        ({"modules": [{"id": "s", "value": {"type": "script"}}]}, "modules[0].value.path", "path"),
        ({"modules": {"a": 1}}, "modules", "list"),
        ({"modules": [raw("failure")]}, "modules[0].id", "reserved"),
    ],
)
def test_invalid_flows_name_the_field(flow: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_flow(flow)
    assert raised.value.field == field
    assert reason in raised.value.reason

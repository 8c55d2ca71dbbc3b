"""Flow expressions: JavaScript over the step's scope, sandboxed, time-limited."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.flows.expressions import ExpressionEngine, ExpressionError


@pytest.fixture(scope="module")
def engine() -> Iterator[ExpressionEngine]:
    made = ExpressionEngine(timeout_s=0.5)
    yield made
    made.close()


def test_reads_the_scope(engine: ExpressionEngine) -> None:
    scope = {
        "flow_input": {"n": 2, "iter": {"value": "x", "index": 3}},
        "results": {"a": [1, 2, 3]},
        "previous_result": {"ok": True},
    }
    assert engine.evaluate("flow_input.n + results.a.length", scope) == 5
    assert engine.evaluate("`${flow_input.iter.value}-${flow_input.iter.index}`", scope) == "x-3"
    assert engine.evaluate("previous_result.ok && results.a.map(v => v * 2)", scope) == [2, 4, 6]
    assert engine.evaluate("({sum: results.a.reduce((s, v) => s + v, 0)})", scope) == {"sum": 6}


def test_undefined_is_null(engine: ExpressionEngine) -> None:
    assert engine.evaluate("flow_input.missing", {"flow_input": {}}) is None


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("flow_input.a.b", "TypeError"),
        ("nope + 1", "ReferenceError: nope is not defined"),
        ("1 +", "SyntaxError"),
        ("require('fs')", "require is not defined"),
        ("fetch('http://127.0.0.1/')", "fetch is not defined"),
    ],
)
def test_errors_say_what_went_wrong(engine: ExpressionEngine, expr: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        engine.evaluate(expr, {"flow_input": {}})


def test_an_expression_cannot_leave_anything_for_the_next(engine: ExpressionEngine) -> None:
    for attempt in (
        "globalThis.leak = 1",
        "Object.prototype.polluted = 1",
        "Array.prototype.map = 0",
    ):
        with pytest.raises(ExpressionError, match="TypeError"):
            engine.evaluate(attempt, {})
    assert engine.evaluate("typeof leak + typeof ({}).polluted", {}) == "undefinedundefined"
    assert engine.evaluate("[1].map(v => v + 1)", {}) == [2]


def test_a_runaway_expression_is_stopped_and_the_engine_goes_on(engine: ExpressionEngine) -> None:
    with pytest.raises(ExpressionError, match=r"timed out after 0\.5s"):
        engine.evaluate("(() => { while (true) {} })()", {})
    assert engine.evaluate("40 + 2", {}) == 42


def test_scope_names_must_be_javascript_names(engine: ExpressionEngine) -> None:
    with pytest.raises(ValueError, match="not a JavaScript name"):
        engine.evaluate("1", {"bad-name": 1})

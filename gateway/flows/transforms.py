"""A module's expressions evaluated in a flow's scope: its arguments, its `sleep`, and the
messages that say which expression failed and where.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.executor.outcome import error_result
from gateway.flows import expressions
from gateway.flows.expressions import ExpressionError
from gateway.flows.model import FlowModule, Transform
from gateway.flows.status import StepError


async def args_of(module: FlowModule, scope: dict[str, Any]) -> dict[str, Any]:
    """The module's arguments: its input transforms evaluated, then its extra args."""
    params = {
        name: transform.static
        for name, transform in module.input_transforms.items()
        if transform.expr is None
    }
    args: dict[str, Any] = {}
    for name, transform in module.input_transforms.items():
        if transform.expr is None:
            args[name] = transform.static
            continue
        try:
            args[name] = await expressions.evaluate(transform.expr, {**scope, "params": params})
        except ExpressionError as error:
            raise StepError(
                expression_message(f"{module.id}.input_transforms.{name}", transform.expr, error)
            ) from error
    args.update(module.extra_args)
    return args


async def value_of(transform: Transform, scope: Mapping[str, Any]) -> Any:
    """The transform's static value, or its expression evaluated in `scope`."""
    if transform.expr is None:
        return transform.static
    return await expressions.evaluate(transform.expr, scope)


def seconds(value: Any, module_id: str) -> float:
    """The `sleep` of module `module_id` as seconds; StepError unless a number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise StepError(f"{module_id}.sleep: must be a number of seconds >= 0, got {value!r}")
    return float(value)


def expression_message(where: str, expr: str, error: ExpressionError) -> str:
    """What failed: the expression `expr` at `where`, and why."""
    return f"{where}: the expression {expr!r} failed: {error}"


def expression_failure(module_id: str, expr: str, error: ExpressionError) -> dict[str, Any]:
    """The error result of a failed `stop_after_if` expression."""
    return error_result(
        "ExpressionError", expression_message(f"{module_id}.stop_after_if", expr, error)
    )

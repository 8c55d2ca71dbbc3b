"""The subset of Windmill's OpenFlow the engine runs, validated into plain frozen values.

`parse_flow` reads a flow value (`{"modules": [...], "failure_module"?, "preprocessor_module"?}`)
and raises `InvalidInput(field, reason)` naming the JSON path of the first problem, such as
``modules[2].value.type: 'graphql' is not supported; supported: ...``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import InvalidInput
from gateway.jobs.retry import RetryPolicy, RetryPolicyError

SUPPORTED_TYPES = (
    "rawscript", "script", "flow", "forloopflow", "branchone", "branchall", "identity",
)  # fmt: skip
RAW_LANGUAGES = ("python3", "bash")


@dataclass(frozen=True, slots=True)
class Transform:
    """How one value is computed: a static JSON value or a JavaScript expression."""

    static: Any = None
    expr: str | None = None


@dataclass(frozen=True, slots=True)
class StopAfterIf:
    """Stop the flow after a module when `expr` holds; `skip_if_stopped` marks it skipped."""

    expr: str
    skip_if_stopped: bool = False


@dataclass(frozen=True, slots=True)
class Branch:
    """One branch: its condition (branchone) or skip_failure flag (branchall), its modules."""

    modules: tuple[FlowModule, ...]
    expr: str | None = None
    skip_failure: bool = False
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class FlowModule:
    """One step of a flow; the fields used depend on `type`."""

    id: str
    type: str
    input_transforms: Mapping[str, Transform] = field(default_factory=dict)
    path: str | None = None
    hash: str | None = None
    content: str | None = None
    language: str | None = None
    iterator: Transform | None = None
    parallel: bool = False
    parallelism: int | None = None
    skip_failures: bool = False
    modules: tuple[FlowModule, ...] = ()
    branches: tuple[Branch, ...] = ()
    default: tuple[FlowModule, ...] = ()
    extra_args: Mapping[str, Any] = field(default_factory=dict)
    retry: RetryPolicy | None = None
    stop_after_if: StopAfterIf | None = None
    sleep: Transform | None = None


@dataclass(frozen=True, slots=True)
class Flow:
    """A validated flow: its modules and optional failure and preprocessor modules."""

    modules: tuple[FlowModule, ...]
    failure_module: FlowModule | None = None
    preprocessor_module: FlowModule | None = None


def parse_flow(value: Mapping[str, Any]) -> Flow:
    """Validate a flow value; raises InvalidInput naming the JSON path of the first problem."""
    if not isinstance(value, Mapping):
        raise InvalidInput("value", "a flow must be a JSON object with 'modules'")
    modules = _modules(value.get("modules", []), "modules")
    _unique_ids(modules, set(), "modules")
    failure = _optional_module(value, "failure_module")
    preprocessor = _optional_module(value, "preprocessor_module")
    if preprocessor is not None and preprocessor.type not in ("rawscript", "script"):
        raise InvalidInput("preprocessor_module.value.type", "must be 'rawscript' or 'script'")
    return Flow(modules=modules, failure_module=failure, preprocessor_module=preprocessor)


def _optional_module(value: Mapping[str, Any], key: str) -> FlowModule | None:
    raw = value.get(key)
    if raw is None:
        return None
    module = _module(raw, key)
    if module.type not in ("rawscript", "script", "identity"):
        raise InvalidInput(f"{key}.value.type", "must be 'rawscript', 'script' or 'identity'")
    return module


def _unique_ids(modules: Sequence[FlowModule], seen: set[str], where: str) -> None:
    for index, module in enumerate(modules):
        if module.id in seen:
            raise InvalidInput(f"{where}[{index}].id", f"{module.id!r} is used twice")
        seen.add(module.id)
        _unique_ids(module.modules, seen, f"{where}[{index}].value.modules")
        for number, branch in enumerate(module.branches):
            _unique_ids(branch.modules, seen, f"{where}[{index}].value.branches[{number}].modules")
        _unique_ids(module.default, seen, f"{where}[{index}].value.default")


def _modules(raw: Any, where: str) -> tuple[FlowModule, ...]:
    if not isinstance(raw, list):
        raise InvalidInput(where, "must be a list of modules")
    return tuple(_module(item, f"{where}[{index}]") for index, item in enumerate(raw))


def _module(raw: Any, where: str) -> FlowModule:
    if not isinstance(raw, Mapping):
        raise InvalidInput(where, "a module must be a JSON object")
    module_id = raw.get("id")
    if not isinstance(module_id, str) or not module_id:
        raise InvalidInput(f"{where}.id", "must be a non-empty string")
    if module_id in ("failure", "preprocessor") and where not in (
        "failure_module",
        "preprocessor_module",
    ):
        raise InvalidInput(f"{where}.id", f"{module_id!r} is reserved")
    if raw.get("suspend"):
        raise InvalidInput(
            f"{where}.suspend", "suspend (approval steps) is not supported by this gateway"
        )
    value = raw.get("value")
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{where}.value", "must be a JSON object with a 'type'")
    kind = value.get("type")
    if kind not in SUPPORTED_TYPES:
        raise InvalidInput(
            f"{where}.value.type",
            f"{kind!r} is not supported; supported: {', '.join(SUPPORTED_TYPES)}",
        )
    fields: dict[str, Any] = {
        "id": module_id,
        "type": kind,
        "retry": _retry(raw.get("retry"), f"{where}.retry"),
        "stop_after_if": _stop_after_if(raw.get("stop_after_if"), f"{where}.stop_after_if"),
        "sleep": _optional_transform(raw.get("sleep"), f"{where}.sleep"),
    }
    fields.update(_VALUE_PARSERS[kind](value, f"{where}.value"))
    return FlowModule(**fields)


def _rawscript(value: Mapping[str, Any], where: str) -> dict[str, Any]:
    content = value.get("content")
    if not isinstance(content, str):
        raise InvalidInput(f"{where}.content", "must be the script's source text")
    language = value.get("language")
    if language not in RAW_LANGUAGES:
        raise InvalidInput(
            f"{where}.language",
            f"{language!r} is not supported; supported: {', '.join(RAW_LANGUAGES)}",
        )
    return {
        "content": content,
        "language": language,
        "input_transforms": _transforms(value, where),
    }


def _script(value: Mapping[str, Any], where: str) -> dict[str, Any]:
    path, version = value.get("path"), value.get("hash")
    if version is not None and not isinstance(version, str):
        raise InvalidInput(f"{where}.hash", "must be the script version's hex hash")
    if not isinstance(path, str) and version is None:
        raise InvalidInput(f"{where}.path", "a script module names a script 'path' or 'hash'")
    extra = value.get("extra_args") or {}
    if not isinstance(extra, Mapping):
        raise InvalidInput(f"{where}.extra_args", "must be a JSON object")
    return {
        "path": path if isinstance(path, str) else None,
        "hash": version,
        "input_transforms": _transforms(value, where),
        "extra_args": dict(extra),
    }


def _subflow(value: Mapping[str, Any], where: str) -> dict[str, Any]:
    path = value.get("path")
    if not isinstance(path, str) or not path:
        raise InvalidInput(f"{where}.path", "a flow module names the flow's 'path'")
    return {"path": path, "input_transforms": _transforms(value, where)}


def _forloop(value: Mapping[str, Any], where: str) -> dict[str, Any]:
    if "iterator" not in value:
        raise InvalidInput(f"{where}.iterator", "a for-loop needs an 'iterator' expression")
    parallelism = value.get("parallelism")
    if parallelism is not None and (
        not isinstance(parallelism, int) or isinstance(parallelism, bool) or parallelism < 1
    ):
        raise InvalidInput(f"{where}.parallelism", "must be a positive integer")
    return {
        "iterator": _transform(value["iterator"], f"{where}.iterator"),
        "parallel": _flag(value, "parallel", where),
        "parallelism": parallelism,
        "skip_failures": _flag(value, "skip_failures", where),
        "modules": _modules(value.get("modules", []), f"{where}.modules"),
    }


def _branchone(value: Mapping[str, Any], where: str) -> dict[str, Any]:
    branches = _branches(value, where, with_expr=True)
    return {"branches": branches, "default": _modules(value.get("default", []), f"{where}.default")}


def _branchall(value: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {
        "branches": _branches(value, where, with_expr=False),
        "parallel": _flag(value, "parallel", where),
    }


def _identity(value: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {}


_VALUE_PARSERS = {
    "rawscript": _rawscript,
    "script": _script,
    "flow": _subflow,
    "forloopflow": _forloop,
    "branchone": _branchone,
    "branchall": _branchall,
    "identity": _identity,
}


def _branches(value: Mapping[str, Any], where: str, *, with_expr: bool) -> tuple[Branch, ...]:
    raw = value.get("branches", [])
    if not isinstance(raw, list):
        raise InvalidInput(f"{where}.branches", "must be a list of branches")
    branches = []
    for index, item in enumerate(raw):
        at = f"{where}.branches[{index}]"
        if not isinstance(item, Mapping):
            raise InvalidInput(at, "a branch must be a JSON object")
        expr = item.get("expr")
        if with_expr and (not isinstance(expr, str) or not expr.strip()):
            raise InvalidInput(f"{at}.expr", "a branchone branch needs a JavaScript 'expr'")
        summary = item.get("summary")
        branches.append(
            Branch(
                modules=_modules(item.get("modules", []), f"{at}.modules"),
                expr=expr if with_expr else None,
                skip_failure=_flag(item, "skip_failure", at),
                summary=summary if isinstance(summary, str) else None,
            )
        )
    return tuple(branches)


def _flag(value: Mapping[str, Any], key: str, where: str) -> bool:
    flag = value.get(key, False)
    if flag is None:
        return False
    if not isinstance(flag, bool):
        raise InvalidInput(f"{where}.{key}", "must be true or false")
    return flag


def _transforms(value: Mapping[str, Any], where: str) -> dict[str, Transform]:
    raw = value.get("input_transforms") or {}
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where}.input_transforms", "must be a JSON object")
    return {
        name: _transform(item, f"{where}.input_transforms.{name}") for name, item in raw.items()
    }


def _optional_transform(raw: Any, where: str) -> Transform | None:
    return None if raw is None else _transform(raw, where)


def _transform(raw: Any, where: str) -> Transform:
    if not isinstance(raw, Mapping):
        raise InvalidInput(where, "must be {type: 'static', value} or {type: 'javascript', expr}")
    kind = raw.get("type")
    if kind == "static":
        return Transform(static=raw.get("value"))
    if kind == "javascript":
        expr = raw.get("expr")
        if not isinstance(expr, str) or not expr.strip():
            raise InvalidInput(f"{where}.expr", "must be a JavaScript expression")
        return Transform(expr=expr)
    raise InvalidInput(f"{where}.type", f"{kind!r} is not supported; supported: static, javascript")


def _stop_after_if(raw: Any, where: str) -> StopAfterIf | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidInput(where, "must be {expr, skip_if_stopped}")
    expr = raw.get("expr")
    if not isinstance(expr, str) or not expr.strip():
        raise InvalidInput(f"{where}.expr", "must be a JavaScript expression")
    return StopAfterIf(expr=expr, skip_if_stopped=_flag(raw, "skip_if_stopped", where))


def _retry(raw: Any, where: str) -> RetryPolicy | None:
    try:
        return RetryPolicy.parse(raw)
    except RetryPolicyError as error:
        raise InvalidInput(where, str(error)) from error

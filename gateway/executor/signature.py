"""A script's argument schema, read from its source without running it.

- python3: the parameters of ``main`` (via `ast`): types from annotations, defaults from literal
  default values; a top-level ``preprocessor`` is noted with its parameter names.
- bash: lines such as ``name="$1"`` or ``name="${1:-default}"`` name the positional parameters.

The schema has Windmill's shape: ``{"$schema": ..., "type": "object", "properties": {name:
{"type"?: ..., "default"?: ...}}, "required": [...], "order": [...]}``.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

JSON_SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"

PYTHON_TYPES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "dict": {"type": "object"},
    "Dict": {"type": "object"},
    "list": {"type": "array"},
    "List": {"type": "array"},
    "bytes": {"type": "string", "contentEncoding": "base64"},
}
"""JSON-schema types of the annotations that have one; any other annotation gives no type."""

BASH_PARAMETER = re.compile(
    r"""^\s*(?:local\s+|declare\s+)?([A-Za-z_]\w*)=(["']?)"""
    r"""\$(?:(\d+)|\{(\d+)(?::-([^}]*))?\})\2\s*(?:\#.*)?$"""
)
"""``name="$1"``, ``name=$1``, ``name="${1}"`` or ``name="${1:-default}"``."""


class ScriptSyntaxError(ValueError):
    """The script cannot be read: a syntax error, or no ``main`` function."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message if line is None else f"line {line}: {message}")
        self.message = message
        self.line = line


@dataclass(frozen=True, slots=True)
class ScriptSignature:
    """What the executor and the arg builders need to know of a script's parameters."""

    schema: dict[str, Any]
    has_preprocessor: bool = False
    preprocessor_params: list[str] = field(default_factory=list)


def infer_schema(language: str, content: str) -> ScriptSignature:
    """The signature of a ``python3`` or ``bash`` script."""
    if language == "python3":
        return _python_signature(content)
    if language == "bash":
        return _bash_signature(content)
    raise ValueError(f"the signature of a {language!r} script cannot be inferred")


def _schema(properties: dict[str, dict[str, Any]], required: list[str]) -> dict[str, Any]:
    return {
        "$schema": JSON_SCHEMA_DRAFT,
        "type": "object",
        "properties": properties,
        "required": required,
        "order": list(properties),
    }


def _python_signature(content: str) -> ScriptSignature:
    try:
        tree = ast.parse(content)
    except SyntaxError as exc:
        raise ScriptSyntaxError(exc.msg, exc.lineno) from None
    functions = {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    main = functions.get("main")
    if main is None:
        raise ScriptSyntaxError("a python3 script needs a top-level `def main(...)`")
    properties: dict[str, dict[str, Any]] = {}
    required: list[str] = []
    for parameter, default in _parameters(main.args):
        prop = _python_type(parameter.annotation)
        if default is None:
            required.append(parameter.arg)
        else:
            prop.update(_json_default(default))
        properties[parameter.arg] = prop
    preprocessor = functions.get("preprocessor")
    return ScriptSignature(
        schema=_schema(properties, required),
        has_preprocessor=preprocessor is not None,
        preprocessor_params=(
            [p.arg for p, _ in _parameters(preprocessor.args)] if preprocessor else []
        ),
    )


def _parameters(args: ast.arguments) -> list[tuple[ast.arg, ast.expr | None]]:
    """Each named parameter with its default (``*args`` and ``**kwargs`` are not arguments)."""
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults += args.defaults
    return [
        *zip(positional, defaults, strict=True),
        *zip(args.kwonlyargs, args.kw_defaults, strict=True),
    ]


def _json_default(default: ast.expr) -> dict[str, Any]:
    """``{"default": value}`` for a literal JSON-able default; nothing for any other default."""
    try:
        value = json.loads(json.dumps(ast.literal_eval(default), allow_nan=False))
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return {}
    return {"default": value}


def _python_type(annotation: ast.expr | None) -> dict[str, Any]:
    """The JSON-schema type of an annotation; ``Optional[X]`` and ``X | None`` are typed as X."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return {}
    match annotation:
        case ast.Name(id=name) | ast.Attribute(attr=name):
            return dict(PYTHON_TYPES.get(name, {}))
        case ast.Subscript(value=ast.Name(id="Optional") | ast.Attribute(attr="Optional")):
            return _python_type(annotation.slice)
        case ast.Subscript(value=generic):
            return _python_type(generic)
        case ast.BinOp(op=ast.BitOr(), left=left, right=ast.Constant(value=None)):
            return _python_type(left)
        case ast.BinOp(op=ast.BitOr(), left=ast.Constant(value=None), right=right):
            return _python_type(right)
    return {}


def _bash_signature(content: str) -> ScriptSignature:
    found: dict[int, tuple[str, str | None]] = {}
    for line in content.splitlines():
        match = BASH_PARAMETER.match(line)
        if match is None:
            continue
        name, _, index, braced_index, default = match.groups()
        position = int(index or braced_index)
        if position > 0:  # $0 is the script itself
            found.setdefault(position, (name, default))
    properties: dict[str, dict[str, Any]] = {}
    required: list[str] = []
    for _, (name, default) in sorted(found.items()):
        if name in properties:
            continue
        properties[name] = {"type": "string"}
        if default is None:
            required.append(name)
        else:
            properties[name]["default"] = default
    return ScriptSignature(schema=_schema(properties, required))


def argument_order(language: str, content: str) -> tuple[str, ...]:
    """The parameter names of inline code, in signature order (none when it cannot be read)."""
    try:
        schema = infer_schema(language, content).schema
    except ValueError:
        return ()
    return tuple(schema.get("order") or schema.get("properties", {}))

"""Signatures read from a script's source: Windmill's schema, without running the script."""

from __future__ import annotations

import pytest

from gateway.executor.signature import JSON_SCHEMA_DRAFT, ScriptSyntaxError, infer_schema


def test_python_annotations_give_types_and_literal_defaults_give_defaults() -> None:
    script = (
        "import datetime\n"
        "def main(name: str, count: int = 3, ratio: float = 0.5, on: bool = False,\n"
        "         meta: dict = {'a': 1}, tags: list[str] = ['x'], raw: bytes = b'',\n"
        "         when=datetime.datetime.now(), anything=None):\n"
        "    pass\n"
    )

    signature = infer_schema("python3", script)

    assert signature.schema == {
        "$schema": JSON_SCHEMA_DRAFT,
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "count": {"type": "integer", "default": 3},
            "ratio": {"type": "number", "default": 0.5},
            "on": {"type": "boolean", "default": False},
            "meta": {"type": "object", "default": {"a": 1}},
            "tags": {"type": "array", "default": ["x"]},
            "raw": {"type": "string", "contentEncoding": "base64"},
            "when": {},
            "anything": {"default": None},
        },
        "required": ["name"],
        "order": ["name", "count", "ratio", "on", "meta", "tags", "raw", "when", "anything"],
    }
    assert not signature.has_preprocessor


def test_optional_annotations_are_typed_by_what_they_wrap() -> None:
    script = (
        "from typing import Optional\n"
        "async def main(a: Optional[int], b: 'str | None' = None, c: 'MyType' = 1, *args,\n"
        "               d: float, **kwargs):\n"
        "    pass\n"
    )

    schema = infer_schema("python3", script).schema

    assert schema["properties"] == {
        "a": {"type": "integer"},
        "b": {"type": "string", "default": None},
        "c": {"default": 1},
        "d": {"type": "number"},
    }
    assert schema["required"] == ["a", "d"]


def test_a_preprocessor_is_noted_with_its_parameters() -> None:
    script = "def preprocessor(event, wm_trigger=None):\n    pass\ndef main(x):\n    pass\n"

    signature = infer_schema("python3", script)

    assert signature.has_preprocessor
    assert signature.preprocessor_params == ["event", "wm_trigger"]


def test_a_python_syntax_error_names_its_line() -> None:
    with pytest.raises(ScriptSyntaxError) as raised:
        infer_schema("python3", "x = 1\n\ndef main(:\n    pass\n")

    assert raised.value.line == 3
    assert "line 3" in str(raised.value)


def test_a_python_script_without_main_is_refused() -> None:
    with pytest.raises(ScriptSyntaxError, match="main"):
        infer_schema("python3", "def handler(x):\n    pass\n")


def test_bash_positional_assignments_give_the_order_and_defaults() -> None:
    script = (
        "#!/bin/bash\n"
        'second="${2:-fallback}"\n'
        'first="$1"\n'
        "third=$3  # unquoted\n"
        'echo "$first $second $third"\n'
    )

    schema = infer_schema("bash", script).schema

    assert schema["order"] == ["first", "second", "third"]
    assert schema["properties"] == {
        "first": {"type": "string"},
        "second": {"type": "string", "default": "fallback"},
        "third": {"type": "string"},
    }
    assert schema["required"] == ["first", "third"]


def test_an_unknown_language_cannot_be_inferred() -> None:
    with pytest.raises(ValueError, match="go"):
        infer_schema("go", "package main")

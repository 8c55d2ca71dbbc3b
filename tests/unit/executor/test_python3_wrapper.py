"""The python3 wrapper's own logic, run in-process: arguments, JSON and the error shape."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from gateway.executor.python3_wrapper import (
    MissingArgument,
    ResultTooLarge,
    SerializationError,
    call_with_args,
    describe_error,
    encode_result,
    module_name,
    parse_json,
    to_json,
)


def test_keyword_only_parameters_without_default_are_required() -> None:
    def main(a: int, *, b: int, c: int = 3) -> tuple[int, int, int]:
        return a, b, c

    assert call_with_args(main, "main", {"a": 1, "b": 2, "z": 0}) == (1, 2, 3)
    with pytest.raises(MissingArgument, match="main\\(\\) is missing required argument 'b'"):
        call_with_args(main, "main", {"a": 1})


def test_positional_only_parameters_are_passed_by_position() -> None:
    def main(a: int, /, b: int = 0) -> int:
        return a - b

    assert call_with_args(main, "main", {"a": 5, "b": 2}) == 3


def test_a_decorated_main_is_read_through_its_wrapper() -> None:
    def logged(function: Any) -> Any:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return function(*args, **kwargs)

        return wrapper

    @logged
    def main(name: str) -> str:
        return name

    assert call_with_args(main, "main", {"name": "n", "extra": 1}) == "n"


def test_a_bound_method_does_not_ask_for_self() -> None:
    class Handler:
        def handle(self, event: dict[str, Any]) -> Any:
            return event["id"]

    assert call_with_args(Handler().handle, "main", {"event": {"id": 7}}) == 7


def test_json_is_written_compact_and_read_back() -> None:
    value = {"text": "café ✓", "items": [1, 2.5, None, True], "nested": {"k": "v"}}

    encoded = to_json(value)

    assert encoded == '{"text":"café ✓","items":[1,2.5,null,true],"nested":{"k":"v"}}'.encode()
    assert parse_json(encoded.decode() + "\n") == value


@pytest.mark.parametrize("value", [float("nan"), {1, 2}, b"raw"])
def test_values_json_cannot_hold_are_refused(value: Any) -> None:
    with pytest.raises(SerializationError):
        encode_result(value, 1000)


def test_a_result_over_the_limit_is_refused_with_its_size() -> None:
    with pytest.raises(ResultTooLarge, match="result is 12 bytes, the limit is 10 bytes"):
        encode_result("x" * 10, 10)


def test_the_wrappers_own_errors_have_no_stack() -> None:
    assert describe_error(MissingArgument("main() is missing required argument 'a'")) == {
        "error": {"name": "MissingArgument", "message": "main() is missing required argument 'a'"}
    }


@pytest.mark.parametrize(
    ("path", "name"),
    [("f/ops/hello", "hello"), ("u/me/my-script.v2", "my_script_v2"), ("f/x/2fast", "_2fast")],
)
def test_the_module_name_comes_from_the_last_segment_of_the_path(path: str, name: str) -> None:
    assert module_name(path) == name

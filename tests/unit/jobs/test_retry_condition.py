"""The retry_if evaluator: the supported JavaScript subset, evaluated as JavaScript would."""

from typing import Any

import pytest

from gateway.jobs.retry_condition import (
    ConditionSyntaxError,
    ConditionTypeError,
    RetryCondition,
)

SCOPE: dict[str, Any] = {
    "error": {"name": "HttpError", "message": "503 Service Unavailable", "status": 503},
    "result": {
        "error": {"name": "HttpError", "message": "503 Service Unavailable", "status": 503},
        "tags": ["transient", "http"],
        "count": 0,
        "empty": "",
        "nothing": None,
        "nested": {"deep": {"flag": True}},
        "dotted.key": "yes",
        "text": "héllo",
        "emoji": "a😀",
    },
    "flow_input": {"retryable": True, "limit": "3", "ids": [1, 2, 3]},
}


def holds(expression: str, scope: dict[str, Any] | None = None) -> bool:
    return RetryCondition.parse(expression).holds(SCOPE if scope is None else scope)


def rejection(expression: str) -> str:
    with pytest.raises(ConditionSyntaxError) as raised:
        RetryCondition.parse(expression)
    return str(raised.value)


# --- what the subset accepts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "error.name === 'HttpError'",
        'error["name"] === "HttpError"',
        "result.error.status >= 500 && result.error.status < 600",
        "error.message.startsWith('503')",
        "error.message.endsWith('Unavailable')",
        "error.message.includes('Service')",
        "result.tags.includes('transient')",
        "flow_input.ids.includes(2)",
        "result.nested.deep.flag",
        "result['dotted.key'] === 'yes'",
        "result.tags[0] === 'transient'",
        "result.tags.length === 2",
        "!result.count",
        "!!flow_input.retryable",
        "(error.status === 429 || error.status === 503) && flow_input.retryable",
        "error.status != null",
        "result.nothing == undefined",
        "result.missing === undefined",
        "result.nothing === null",
        "error.status === 503.0",
        "error.status > -1",
        "result.text.length === 5",
    ],
)
def test_supported_expressions_hold(expression: str) -> None:
    assert holds(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "error.name === 'Other'",
        "result.tags.includes('permanent')",
        "flow_input.ids.includes('2')",
        "result.count",
        "result.empty",
        "result.nothing",
        "result.missing",
        "!flow_input.retryable",
        "error.message.startsWith('Service')",
        "result.nothing === undefined",
    ],
)
def test_supported_expressions_that_do_not_hold(expression: str) -> None:
    assert not holds(expression)


# --- JavaScript semantics -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("flow_input.limit == 3", True),
        ("flow_input.limit === 3", False),
        ("true == 1", True),
        ("true === 1", False),
        ("null == 0", False),
        ("null == undefined", True),
        ("null === undefined", False),
        ("'' == 0", True),
        ("' 12 ' == 12", True),
        ("'0x1f' == 31", True),
        ("'abc' == 0", False),
        ("flow_input.ids == '1,2,3'", True),
        ("result.nested == '[object Object]'", True),
        ("result.nested === result.nested", True),
        ("result.nested == flow_input", False),
        ("1 == 1.0", True),
    ],
)
def test_equality_follows_javascript_coercion(expression: str, expected: bool) -> None:
    assert holds(expression) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'10' < '9'", True),
        ("'10' < 9", False),
        ("flow_input.limit > 2", True),
        ("null >= 0", True),
        ("undefined >= 0", False),
        ("undefined < 0", False),
        ("'abc' < 1", False),
        ("'abc' >= 1", False),
        ("'B' < 'a'", True),
        ("'\\uFFFF' < '😀'", False),
    ],
)
def test_relations_follow_javascript_coercion(expression: str, expected: bool) -> None:
    assert holds(expression) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("result.tags", True),
        ("flow_input.ids.length", True),
        ("result.nested.missing || 'fallback'", True),
        ("result.count || result.empty", False),
        ("result.tags && result.count", False),
        ("0.0", False),
        ("-0", False),
        ("'0'", True),
        ("'false'", True),
    ],
)
def test_truthiness_is_javascript_truthiness(expression: str, expected: bool) -> None:
    assert holds(expression) is expected


def test_empty_objects_and_arrays_are_truthy() -> None:
    assert holds("result", {"result": {}})
    assert holds("result", {"result": []})


def test_logical_operators_short_circuit() -> None:
    # The right side would throw on null; it is never evaluated.
    assert not holds("result.nothing && result.nothing.field")
    assert holds("flow_input.retryable || result.nothing.field")


def test_names_missing_from_the_scope_are_undefined() -> None:
    assert holds("error === undefined", {"result": {}})


def test_strings_follow_utf16_length_and_indexing() -> None:
    assert holds("result.emoji.length === 3")
    assert holds("result.text[1] === 'é'")


def test_includes_on_a_string_coerces_its_argument_to_text() -> None:
    assert holds("'code 503'.includes(503)")
    assert holds("'value: null'.includes(null)")
    assert holds("'1.5 s'.startsWith(1.5)")


def test_numbers_are_compared_as_doubles() -> None:
    assert holds("result.big === 9007199254740992", {"result": {"big": 9007199254740993}})


@pytest.mark.parametrize(
    ("expression", "escaped"),
    [
        ("'it\\'s'", "it's"),
        ('"tab\\there"', "tab\there"),
        ("'\\x41\\u0042\\u{43}'", "ABC"),
        ("'\\q'", "q"),
    ],
)
def test_string_literal_escapes(expression: str, escaped: str) -> None:
    assert holds(f"{expression} === result.value", {"result": {"value": escaped}})


# --- runtime errors, as JavaScript would throw them -----------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "result.nothing.field",
        "result.missing.field",
        "result.nothing.includes('x')",
        "result.count.includes(1)",
        "result.tags.startsWith('x')",
        "result.nested.includes('deep')",
    ],
)
def test_reading_through_null_or_calling_a_missing_method_is_a_type_error(
    expression: str,
) -> None:
    with pytest.raises(ConditionTypeError):
        holds(expression)


# --- what the subset rejects, at parse time -------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("error.status + 1 > 500", "unsupported operator '+' at column 14"),
        ("error?.name", "unsupported operator '?.' at column 6"),
        ("error.name ?? 'x'", "unsupported operator '??' at column 12"),
        ("error ? 1 : 0", "unsupported operator '?' at column 7"),
        ("x => x", "unsupported operator '=>' at column 3"),
        ("error.status = 500", "unsupported operator '=' at column 14"),
        ("error.status - 1", "unsupported operator '-' at column 14"),
        ("{}", "unsupported operator '{' at column 1"),
        ("`text`", "template literals are not supported (column 1)"),
        ("typeof error", "unsupported identifier 'typeof' at column 1"),
        ("process.exit(1)", "unsupported identifier 'process' at column 1"),
        ("error.message.match('x')", "unsupported method .match()"),
        ("error.message.toLowerCase()", "unsupported method .toLowerCase()"),
        ("error['name']('x')", "only .includes(), .startsWith() and .endsWith() can be called"),
        ("error.name.includes('a', 1)", ".includes() takes exactly one argument"),
        ("[1, 2].includes(1)", "array literals are not supported"),
        ("error.", "expected a property name after '.'"),
        ("(error", "expected ')' but found the end of the expression"),
        ("error error", "unexpected 'error' at column 7"),
        ("'open", "unterminated string starting at column 1"),
        ("0x1F === 31", "unsupported number literal '0x1F' at column 1"),
        ("010 === 8", "unsupported number literal '010' at column 1"),
        ("'\\1'", "octal escapes are not supported"),
        ("'\\xZZ'", "invalid escape sequence"),
        ("error # 1", "unexpected character '#' at column 7"),
        ("", "expression is empty"),
        ("   ", "expression is empty"),
        ("!" * 40 + "error", "expression nests deeper than 32 levels"),
        ("(" * 40 + "error" + ")" * 40, "expression nests deeper than 32 levels"),
        ("error || " * 200 + "error", "expression is longer than 1000 characters"),
    ],
)
def test_expressions_outside_the_subset_are_rejected_naming_the_construct(
    expression: str, message: str
) -> None:
    assert message in rejection(expression)


def test_a_parsed_condition_keeps_its_source() -> None:
    assert RetryCondition.parse("error").source == "error"

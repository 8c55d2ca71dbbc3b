"""Kafka and WebSocket message filters: validation of entries and matching of messages."""

import json
import logging
from typing import Any

import pytest

from gateway.triggers.filters import (
    FieldFilter,
    FilterError,
    FilterGroup,
    FilterLogic,
    load_filters,
    matches,
    validate_filters,
)

ORDER = {
    "type": "order",
    "amount": 42,
    "paid": True,
    "note": None,
    "customer": {"tier": "gold", "address": {"country": "FR", "city": "Lyon"}},
    "items": [{"sku": "A1", "qty": 2}, {"sku": "B7", "qty": 1}],
    "tags": ["rush", "gift", "eu"],
    "a.b": "literal dotted key",
    "lines": [{"nested": {"x": 1}}],
}


def passes(filters: list[Any], message: Any = ORDER, logic: FilterLogic = "and") -> bool:
    text = message if isinstance(message, str | bytes) else json.dumps(message)
    return matches(validate_filters(filters), logic, text)


def invalid(filters: list[Any]) -> FilterError:
    with pytest.raises(FilterError) as raised:
        validate_filters(filters)
    return raised.value


# --- validation -----------------------------------------------------------------------------------


def test_entries_parse_into_leaves_and_groups() -> None:
    parsed = validate_filters(
        [
            {"key": "type", "value": "order"},
            {"path": "customer.tier", "value": "gold"},
            {"any_of": [{"key": "paid", "value": True}]},
        ]
    )

    assert parsed == [
        FieldFilter(("type",), "order"),
        FieldFilter(("customer", "tier"), "gold"),
        FilterGroup("any_of", (FieldFilter(("paid",), True),)),
    ]


def test_a_key_with_dots_names_one_top_level_field() -> None:
    assert validate_filters([{"key": "a.b", "value": 1}]) == [FieldFilter(("a.b",), 1)]


@pytest.mark.parametrize(
    ("filters", "location", "reason"),
    [
        (["type"], "filters[0]", "must be an object"),
        ([{"key": "t", "value": 1}, 7], "filters[1]", "must be an object"),
        (
            [{"key": "type", "path": "type", "value": "order"}],
            "filters[0]",
            "mixes 'key' and 'path'; use one",
        ),
        (
            [{"key": "type", "value": "order", "any_of": []}],
            "filters[0]",
            "mixes the criterion 'key' with the group 'any_of'",
        ),
        (
            [{"path": "a.b", "all_of": []}],
            "filters[0]",
            "mixes the criterion 'path' with the group 'all_of'",
        ),
        (
            [{"value": 1, "none_of": []}],
            "filters[0]",
            "mixes the criterion 'value' with the group 'none_of'",
        ),
        (
            [{"any_of": [], "all_of": []}],
            "filters[0]",
            "has several groups (any_of, all_of); use one",
        ),
        ([{"any_of": {"key": "a", "value": 1}}], "filters[0].any_of", "must be an array"),
        ([{"none_of": None}], "filters[0].none_of", "must be an array"),
        ([{"path": "customer..tier", "value": 1}], "filters[0].path", "has an empty segment"),
        ([{"path": ".tier", "value": 1}], "filters[0].path", "has an empty segment"),
        ([{"path": "tier.", "value": 1}], "filters[0].path", "has an empty segment"),
        ([{"path": "", "value": 1}], "filters[0].path", "has an empty segment"),
        ([{"key": "type"}], "filters[0]", "missing 'value'"),
        ([{"path": "customer.tier"}], "filters[0]", "missing 'value'"),
        ([{"value": 1}], "filters[0]", "needs 'key' or 'path'"),
        ([{}], "filters[0]", "needs 'key' or 'path'"),
        ([{"key": 1, "value": 1}], "filters[0].key", "must be a string"),
        ([{"path": ["a"], "value": 1}], "filters[0].path", "must be a string"),
        (
            [{"all_of": [{"key": "a", "value": 1}, {"any_of": [{"key": "b"}]}]}],
            "filters[0].all_of[1].any_of[0]",
            "missing 'value'",
        ),
    ],
)
def test_invalid_entries_are_rejected_with_their_location(
    filters: list[Any], location: str, reason: str
) -> None:
    error = invalid(filters)

    assert error.location == location
    assert reason in error.reason
    assert str(error).startswith(f"{location}: ")


def test_filter_error_is_a_value_error() -> None:
    assert issubclass(FilterError, ValueError)


def test_empty_groups_are_dropped_at_every_level() -> None:
    assert validate_filters(
        [
            {"any_of": []},
            {"all_of": [{"none_of": []}, {"key": "type", "value": "order"}]},
            {"none_of": [{"any_of": []}]},
        ]
    ) == [FilterGroup("all_of", (FieldFilter(("type",), "order"),))]


def test_load_filters_skips_invalid_entries_with_an_error_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        loaded = load_filters([{"key": "type"}, {"key": "type", "value": "order"}])

    assert loaded == [FieldFilter(("type",), "order")]
    assert "filters[0]: missing 'value'" in caplog.text


# --- matching: the list and its logic -------------------------------------------------------------


def test_an_empty_filter_list_matches_everything_even_non_json() -> None:
    assert passes([], "not json at all")
    assert passes([], b"\xff\xfe")
    assert passes([], "[1, 2]")


def test_a_list_of_only_empty_groups_matches_everything() -> None:
    assert passes([{"any_of": []}], "not json")


@pytest.mark.parametrize("message", ["not json", "{broken", '"order"', "42", "null", "[{}]", ""])
def test_a_message_that_is_not_a_json_object_never_matches(message: str) -> None:
    assert not passes([{"none_of": [{"key": "type", "value": "x"}]}], message)


def test_invalid_utf8_bytes_never_match() -> None:
    assert not passes([{"none_of": [{"key": "type", "value": "x"}]}], b'{"type": "\xff"}')


def test_bytes_messages_are_parsed_as_json() -> None:
    assert passes([{"key": "type", "value": "order"}], json.dumps(ORDER).encode())


def test_nan_and_infinity_are_not_json() -> None:
    assert not passes([{"key": "type", "value": "order"}], '{"type": "order", "x": NaN}')


def test_and_logic_needs_every_entry() -> None:
    filters = [{"key": "type", "value": "order"}, {"key": "amount", "value": 7}]

    assert not passes(filters, logic="and")
    assert passes(filters[:1], logic="and")


def test_or_logic_needs_one_entry() -> None:
    filters = [{"key": "type", "value": "refund"}, {"key": "amount", "value": 42}]

    assert passes(filters, logic="or")
    assert not passes(filters[:1], logic="or")


def test_the_first_of_duplicate_keys_wins() -> None:
    message = '{"type": "order", "type": "refund"}'

    assert passes([{"key": "type", "value": "order"}], message)
    assert not passes([{"key": "type", "value": "refund"}], message)


# --- matching: leaves -----------------------------------------------------------------------------


def test_a_leaf_needs_the_field_to_exist() -> None:
    assert not passes([{"key": "missing", "value": None}])
    assert passes([{"key": "note", "value": None}])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42, True),
        (42.0, True),
        ("42", False),
        (43, False),
        (None, False),
    ],
)
def test_numbers_compare_by_value_without_coercion(value: Any, expected: bool) -> None:
    assert passes([{"key": "amount", "value": value}]) is expected


@pytest.mark.parametrize(("value", "expected"), [(True, True), (1, False), ("true", False)])
def test_booleans_are_not_numbers_or_strings(value: Any, expected: bool) -> None:
    assert passes([{"key": "paid", "value": value}]) is expected


def test_one_is_not_true() -> None:
    assert not passes([{"key": "n", "value": True}], {"n": 1})


def test_a_string_is_not_a_number() -> None:
    assert not passes([{"key": "code", "value": 42}], {"code": "42"})


def test_objects_match_as_a_superset() -> None:
    assert passes([{"key": "customer", "value": {"tier": "gold"}}])
    assert passes([{"key": "customer", "value": {"address": {"country": "FR"}}}])
    assert passes([{"key": "customer", "value": {}}])
    assert not passes([{"key": "customer", "value": {"tier": "gold", "vip": True}}])
    assert not passes([{"key": "customer", "value": {"address": {"country": "DE"}}}])


def test_arrays_match_when_every_wanted_element_is_found() -> None:
    assert passes([{"key": "tags", "value": ["gift"]}])
    assert passes([{"key": "tags", "value": ["eu", "rush"]}])
    assert passes([{"key": "tags", "value": []}])
    assert not passes([{"key": "tags", "value": ["gift", "slow"]}])


def test_array_elements_match_as_supersets_too() -> None:
    assert passes([{"key": "items", "value": [{"sku": "B7"}]}])
    assert not passes([{"key": "items", "value": [{"sku": "B7", "qty": 2}]}])


def test_an_array_never_matches_a_scalar_or_an_object() -> None:
    assert not passes([{"key": "tags", "value": "gift"}])
    assert not passes([{"key": "tags", "value": {"0": "rush"}}])
    assert not passes([{"key": "type", "value": ["order"]}])


def test_a_path_walks_nested_objects() -> None:
    assert passes([{"path": "customer.address.country", "value": "FR"}])
    assert passes([{"path": "customer.address", "value": {"city": "Lyon"}}])
    assert not passes([{"path": "customer.address.country", "value": "DE"}])
    assert not passes([{"path": "customer.address.zip", "value": "69000"}])


def test_a_path_does_not_walk_through_arrays() -> None:
    assert not passes([{"path": "items.0.sku", "value": "A1"}])
    assert not passes([{"path": "lines.nested.x", "value": 1}])


def test_a_path_through_a_scalar_does_not_match() -> None:
    assert not passes([{"path": "type.length", "value": 5}])


def test_a_dotted_key_is_a_literal_field_but_a_dotted_path_is_not() -> None:
    assert passes([{"key": "a.b", "value": "literal dotted key"}])
    assert not passes([{"path": "a.b", "value": "literal dotted key"}])


# --- matching: groups -----------------------------------------------------------------------------


def test_any_of_needs_one_child() -> None:
    group = {"any_of": [{"key": "type", "value": "refund"}, {"key": "paid", "value": True}]}

    assert passes([group])
    assert not passes([{"any_of": [{"key": "type", "value": "refund"}]}])


def test_all_of_needs_every_child() -> None:
    assert passes([{"all_of": [{"key": "type", "value": "order"}, {"key": "amount", "value": 42}]}])
    assert not passes(
        [{"all_of": [{"key": "type", "value": "order"}, {"key": "amount", "value": 1}]}]
    )


def test_none_of_holds_when_no_child_matches() -> None:
    assert passes([{"none_of": [{"key": "type", "value": "refund"}]}])
    assert not passes([{"none_of": [{"key": "type", "value": "order"}]}])


def test_a_missing_field_satisfies_none_of() -> None:
    assert passes([{"none_of": [{"key": "cancelled", "value": True}]}])


def test_groups_nest() -> None:
    filters = [
        {
            "all_of": [
                {"path": "customer.tier", "value": "gold"},
                {
                    "any_of": [
                        {"key": "tags", "value": ["rush"]},
                        {"none_of": [{"key": "paid", "value": True}]},
                    ]
                },
            ]
        }
    ]

    assert passes(filters)
    assert not passes(filters, {**ORDER, "tags": []})
    assert passes(filters, {**ORDER, "tags": [], "paid": False})


def test_a_dropped_empty_group_does_not_change_the_result() -> None:
    assert passes([{"any_of": []}, {"key": "type", "value": "order"}], logic="and")
    assert not passes([{"any_of": []}, {"key": "type", "value": "refund"}], logic="or")

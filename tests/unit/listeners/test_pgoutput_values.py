"""Column values from pgoutput text to JSON, by type OID (session: DateStyle=ISO, TimeZone=UTC)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.listeners.pgoutput import Column, PgoutputError, Relation, convert_text, row_values

UUID_TEXT = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
BOOL, BYTEA, INT8, INT2, INT4, TEXT, OID, JSON = 16, 17, 20, 21, 23, 25, 26, 114
FLOAT4, FLOAT8, DATE, TIME, TIMESTAMP, TIMESTAMPTZ = 700, 701, 1082, 1083, 1114, 1184
NUMERIC, UUID, JSONB, INTERVAL, INET = 1700, 2950, 3802, 1186, 869
INT4_ARRAY, TEXT_ARRAY, BOOL_ARRAY, NUMERIC_ARRAY, JSONB_ARRAY = 1007, 1009, 1000, 1231, 3807
TIMESTAMPTZ_ARRAY, FLOAT8_ARRAY, BYTEA_ARRAY, UUID_ARRAY = 1185, 1022, 1001, 2951


@pytest.mark.parametrize(
    ("type_oid", "text", "value"),
    [
        (BOOL, "t", True),
        (BOOL, "f", False),
        (INT2, "-7", -7),
        (INT4, "2147483647", 2147483647),
        (INT8, "-9223372036854775808", -9223372036854775808),
        (OID, "16452", 16452),
        (FLOAT4, "1.5", 1.5),
        (FLOAT8, "-2.5e-05", -2.5e-05),
        (FLOAT8, "NaN", "NaN"),
        (FLOAT8, "Infinity", "Infinity"),
        (FLOAT8, "-Infinity", "-Infinity"),
        (NUMERIC, "12345678901234567890.000000000001", "12345678901234567890.000000000001"),
        (NUMERIC, "NaN", "NaN"),
        (TEXT, "", ""),
        (UUID, UUID_TEXT, UUID_TEXT),
        (JSON, '{"a": 1}', {"a": 1}),
        (JSONB, "null", None),
        (JSONB, '"text"', "text"),
        (DATE, "2024-02-29", "2024-02-29"),
        (DATE, "infinity", "infinity"),
        (DATE, "0044-03-15 BC", "0044-03-15 BC"),
        (TIME, "14:30:00.5", "14:30:00.5"),
        (TIMESTAMP, "2024-01-15 14:30:00", "2024-01-15T14:30:00"),
        (TIMESTAMPTZ, "2024-01-15 14:30:00+00", "2024-01-15T14:30:00+00:00"),
        (TIMESTAMPTZ, "1900-01-01 00:00:00+00:19:32", "1900-01-01T00:00:00+00:19:32"),
        (TIMESTAMPTZ, "-infinity", "-infinity"),
        (TIMESTAMPTZ, "10000-01-01 00:00:00+00", "10000-01-01 00:00:00+00"),
        (BYTEA, "\\x", []),
        (BYTEA, "\\x00ff", [0, 255]),
        (INTERVAL, "1 day 02:00:00", "1 day 02:00:00"),
        (INET, "10.0.0.1/8", "10.0.0.1/8"),
    ],
)
def test_values_convert_by_type(type_oid: int, text: str, value: Any) -> None:
    assert convert_text(type_oid, text) == value


@pytest.mark.parametrize(
    ("type_oid", "text", "value"),
    [
        (INT4_ARRAY, "{}", []),
        (INT4_ARRAY, "{1,2,3}", [1, 2, 3]),
        (INT4_ARRAY, "{{1,2},{3,NULL}}", [[1, 2], [3, None]]),
        (INT4_ARRAY, "[0:1]={5,6}", [5, 6]),
        (TEXT_ARRAY, '{"",NULL,"NULL",a}', ["", None, "NULL", "a"]),
        (
            TEXT_ARRAY,
            '{"a,b","{c}","back\\\\slash","quote\\""}',
            ["a,b", "{c}", "back\\slash", 'quote"'],
        ),
        (BOOL_ARRAY, "{t,f}", [True, False]),
        (NUMERIC_ARRAY, "{1.10,NaN}", ["1.10", "NaN"]),
        (FLOAT8_ARRAY, "{0.25,Infinity}", [0.25, "Infinity"]),
        (JSONB_ARRAY, '{"{\\"a\\": 1}","[1, 2]",null}', [{"a": 1}, [1, 2], None]),
        (TIMESTAMPTZ_ARRAY, '{"2024-01-15 14:30:00+00"}', ["2024-01-15T14:30:00+00:00"]),
        (BYTEA_ARRAY, '{"\\\\x0102"}', [[1, 2]]),
        (UUID_ARRAY, f"{{{UUID_TEXT}}}", [UUID_TEXT]),
    ],
)
def test_arrays_become_lists_of_converted_elements(type_oid: int, text: str, value: Any) -> None:
    assert convert_text(type_oid, text) == value


@pytest.mark.parametrize("text", ["{1,2", "1,2}", "{1,2}x", '{"open}'])
def test_an_array_text_that_does_not_parse_is_kept_as_text(text: str) -> None:
    assert convert_text(INT4_ARRAY, text) == text


def test_a_tuple_that_does_not_match_its_relation_is_refused() -> None:
    relation = Relation(1, "public", "t", "d", (Column("id", INT4, -1, is_key=True),))

    with pytest.raises(PgoutputError, match="has 1 columns, the tuple 2"):
        row_values(relation, ("1", "2"))
    with pytest.raises(PgoutputError, match="binary format"):
        row_values(relation, (b"\x00\x00\x00\x01",))

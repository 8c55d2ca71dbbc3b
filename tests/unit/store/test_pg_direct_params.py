"""How the direct PostgreSQL path writes statements and parameters for libpq."""

from __future__ import annotations

from uuid import UUID

import pytest

from gateway.store.pg_direct import numbered, text_parameter
from gateway.store.values import Json


def test_named_placeholders_become_numbers_one_per_name() -> None:
    sql, names = numbered("SELECT :a, CAST(:b AS jsonb), :a WHERE x = :c")

    assert sql == b"SELECT $1, CAST($2 AS jsonb), $1 WHERE x = $3"
    assert names == ("a", "b", "c")


def test_casts_and_text_are_left_alone() -> None:
    sql, names = numbered("SELECT now()::text, 'a:b', :value::int, 5 % 2")

    assert sql == b"SELECT now()::text, 'a:b', $1::int, 5 % 2"
    assert names == ("value",)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        ("héllo", "héllo".encode()),
        (True, b"true"),
        (False, b"false"),
        (42, b"42"),
        (1.5, b"1.5"),
        (UUID(int=1), b"00000000-0000-0000-0000-000000000001"),
        (Json([1, "a", None]), b'[1,"a",null]'),
        ({"k": {"n": 1}}, b'{"k":{"n":1}}'),
    ],
)
def test_parameters_are_sent_in_their_text_form(value: object, text: bytes | None) -> None:
    assert text_parameter(value) == text


def test_a_value_without_a_text_form_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="cannot send a bytes"):
        text_parameter(b"raw")

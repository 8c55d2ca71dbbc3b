"""`strict_json.loads`: JSON a job can receive and both dialects store, nothing else."""

from __future__ import annotations

import pytest

from gateway.http_routes import strict_json


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("NaN", "NaN is not JSON"),
        ('{"a": -Infinity}', "-Infinity is not JSON"),
        ("1e999", "1e999 is beyond the range of a JSON number"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a": "x\\u0000"}', "a string holds \\u0000 or an unpaired surrogate"),
        ('["\\udc00"]', "a string holds \\u0000 or an unpaired surrogate"),
        ('{"\\ud800": 1}', "a string holds \\u0000 or an unpaired surrogate"),
    ],
)
def test_what_cannot_be_stored_or_passed_on_is_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("\\", "\\\\")):
        strict_json.loads(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('"\\\\u0000"', "\\u0000"),  # an escaped backslash, then the letters
        ('"\\ud83d\\ude00"', "\U0001f600"),  # a surrogate pair is one character
        (
            b'{"n": 1e308, "big": 123456789012345678901234567890}',
            {"n": 1e308, "big": 123456789012345678901234567890},
        ),
    ],
)
def test_what_can_be_stored_is_read_as_json(text: str | bytes, value: object) -> None:
    assert strict_json.loads(text) == value

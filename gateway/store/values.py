"""Values that cross the store boundary the same way on every dialect."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Json:
    """A JSON value to store in a json/jsonb column (dicts are stored as JSON without it)."""

    value: Any


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


_JSON_OPTIONS: Final = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def json_bytes(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """`value` as compact JSON text in UTF-8. `default` turns what JSON has no type for,
    datetimes included, into something it has; UUIDs become their text."""
    try:
        return orjson.dumps(value, default=default, option=_JSON_OPTIONS)
    except orjson.JSONEncodeError:
        # orjson refuses integers beyond 64 bits, which JSON allows.
        return json.dumps(value, default=default, separators=(",", ":")).encode()

"""Values that cross the store boundary the same way on every dialect."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Json:
    """A JSON value to store in a json/jsonb column (dicts are stored as JSON without it)."""

    value: Any


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)

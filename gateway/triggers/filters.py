"""Message filters of Kafka and WebSocket triggers: Windmill's ``filters`` and ``filter_logic``.

Entries, nested freely inside groups::

    {"key": "type", "value": "order"}              top-level field "type" (dots are literal)
    {"path": "order.customer.tier", "value": "gold"}    walks nested objects, never arrays
    {"any_of": [...]} {"all_of": [...]} {"none_of": [...]}

A leaf matches when the field exists and its value contains ``value``: an object contains another
when each of that one's keys is present with a containing value, an array when each element of
that one is contained by some element, and scalars only when equal, without coercion (``42`` is
not ``"42"``, ``true`` is not ``1``). ``filter_logic`` (``and`` or ``or``) combines the top level.

Entries are validated once, when a trigger is written (``validate_filters``, raising FilterError
with the entry's location), and parsed into frozen structures that a listener reuses for every
message (``matches``). A listener reading a stored trigger uses ``load_filters``, which skips an
invalid entry with an error log instead of refusing the whole trigger.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

logger = logging.getLogger(__name__)

FilterLogic: TypeAlias = Literal["and", "or"]
GroupKind: TypeAlias = Literal["any_of", "all_of", "none_of"]

_GROUP_KINDS: Final[tuple[GroupKind, ...]] = ("any_of", "all_of", "none_of")
_CRITERION_KEYS: Final = ("key", "path", "value")
_MISSING: Final = object()
MAX_FILTER_ENTRIES: Final = 100
MAX_FILTERS_BYTES: Final = 16 * 1024


class FilterError(ValueError):
    """An unusable filter entry; ``location`` points at it, e.g. ``filters[1].any_of[0]``."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"{location}: {reason}")
        self.location = location
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FieldFilter:
    """A leaf: the field at ``path`` exists and its value contains ``value``."""

    path: tuple[str, ...]
    value: Any

    def matches(self, message: dict[str, Any]) -> bool:
        """Whether ``message`` (a decoded JSON object) satisfies this leaf."""
        field: Any = message
        for segment in self.path:
            if not isinstance(field, dict):
                return False
            field = field.get(segment, _MISSING)
        return field is not _MISSING and _contains(field, self.value)


@dataclass(frozen=True, slots=True)
class FilterGroup:
    """``any_of``, ``all_of`` or ``none_of`` over its (never empty) children."""

    kind: GroupKind
    children: tuple[Filter, ...]

    def matches(self, message: dict[str, Any]) -> bool:
        """Whether ``message`` (a decoded JSON object) satisfies this group."""
        results = (child.matches(message) for child in self.children)
        if self.kind == "any_of":
            return any(results)
        if self.kind == "all_of":
            return all(results)
        return not any(results)


Filter: TypeAlias = FieldFilter | FilterGroup


def validate_filters(filters: list[Any]) -> list[Filter]:
    """Parse a trigger's ``filters``; raise FilterError at the first entry that is not valid.

    Empty groups are dropped, so a list of only empty groups becomes the empty list, which
    matches every message. More than `MAX_FILTER_ENTRIES` entries (groups and leaves, at any
    depth) or more than `MAX_FILTERS_BYTES` of JSON are refused: every message is matched
    against them.
    """
    size = len(json.dumps(filters, separators=(",", ":"), default=str).encode())
    if size > MAX_FILTERS_BYTES:
        raise FilterError("filters", f"{size} bytes of JSON, over the limit of {MAX_FILTERS_BYTES}")
    count = _count_entries(filters)
    if count > MAX_FILTER_ENTRIES:
        raise FilterError("filters", f"{count} entries, over the limit of {MAX_FILTER_ENTRIES}")
    return [
        parsed
        for index, entry in enumerate(filters)
        if (parsed := _parse_entry(entry, f"filters[{index}]")) is not None
    ]


def _count_entries(entries: list[Any]) -> int:
    """Entries at every depth: each one, plus those inside its groups."""
    count = 0
    for entry in entries:
        count += 1
        if isinstance(entry, dict):
            for kind in _GROUP_KINDS:
                children = entry.get(kind)
                if isinstance(children, list):
                    count += _count_entries(children)
    return count


def load_filters(filters: list[Any]) -> list[Filter]:
    """Parse stored ``filters`` for listening: an invalid entry is logged and skipped."""
    loaded: list[Filter] = []
    for index, entry in enumerate(filters):
        try:
            parsed = _parse_entry(entry, f"filters[{index}]")
        except FilterError as error:
            logger.error("skipping filter entry %s", error, extra={"action": "filter_skipped"})
            continue
        if parsed is not None:
            loaded.append(parsed)
    return loaded


def matches(filters: Sequence[Filter], logic: FilterLogic, message: str | bytes) -> bool:
    """Whether ``message`` passes ``filters`` combined with ``logic``.

    An empty list passes everything, even text that is not JSON. Otherwise the message must be
    a JSON object; anything else (another JSON value, invalid JSON) never passes.
    """
    if not filters:
        return True
    try:
        document = json.loads(
            message, object_pairs_hook=_first_key_wins, parse_constant=_reject_constant
        )
    except (ValueError, RecursionError):
        return False
    if not isinstance(document, dict):
        return False
    combine = {"and": all, "or": any}[logic]
    return combine(entry.matches(document) for entry in filters)


def _parse_entry(entry: Any, location: str) -> Filter | None:
    if not isinstance(entry, dict):
        raise FilterError(location, "must be an object")
    groups = [kind for kind in _GROUP_KINDS if kind in entry]
    criteria = [key for key in _CRITERION_KEYS if key in entry]
    if groups:
        if criteria:
            raise FilterError(
                location, f"mixes the criterion {criteria[0]!r} with the group {groups[0]!r}"
            )
        if len(groups) > 1:
            raise FilterError(location, f"has several groups ({', '.join(groups)}); use one")
        return _parse_group(groups[0], entry[groups[0]], f"{location}.{groups[0]}")
    if "key" in entry and "path" in entry:
        raise FilterError(location, "mixes 'key' and 'path'; use one")
    if "key" not in entry and "path" not in entry:
        raise FilterError(
            location, "needs 'key' or 'path' with a 'value', or one of any_of, all_of, none_of"
        )
    if "value" not in entry:
        raise FilterError(location, "missing 'value'")
    if "key" in entry:
        key = entry["key"]
        if not isinstance(key, str):
            raise FilterError(f"{location}.key", "must be a string")
        return FieldFilter((key,), entry["value"])
    path = entry["path"]
    if not isinstance(path, str):
        raise FilterError(f"{location}.path", "must be a string")
    segments = tuple(path.split("."))
    if "" in segments:
        raise FilterError(f"{location}.path", f"has an empty segment: {path!r}")
    return FieldFilter(segments, entry["value"])


def _parse_group(kind: GroupKind, body: Any, location: str) -> FilterGroup | None:
    if not isinstance(body, list):
        raise FilterError(location, "must be an array")
    children = tuple(
        parsed
        for index, entry in enumerate(body)
        if (parsed := _parse_entry(entry, f"{location}[{index}]")) is not None
    )
    return FilterGroup(kind, children) if children else None


def _contains(actual: Any, expected: Any) -> bool:
    """Whether ``actual`` is a superset of ``expected``, both decoded JSON."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and _contains(actual[key], value) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return isinstance(actual, list) and all(
            any(_contains(item, wanted) for item in actual) for wanted in expected
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    if isinstance(expected, int | float):
        return isinstance(actual, int | float) and actual == expected
    return type(actual) is type(expected) and bool(actual == expected)


def _first_key_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        document.setdefault(key, value)
    return document


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON, and so Windmill, does not.
    raise ValueError(f"{name} is not JSON")

"""How many filters a trigger may have, and how large they may be: refused when written."""

from __future__ import annotations

import pytest

from gateway.triggers.filters import (
    MAX_FILTER_ENTRIES,
    MAX_FILTERS_BYTES,
    FilterError,
    validate_filters,
)


def leaf(n: int) -> dict[str, object]:
    return {"key": "type", "value": f"v{n}"}


def test_filters_up_to_the_entry_limit_are_accepted() -> None:
    assert len(validate_filters([leaf(n) for n in range(MAX_FILTER_ENTRIES)])) == MAX_FILTER_ENTRIES


def test_too_many_entries_are_refused_counting_those_inside_groups() -> None:
    nested = [{"any_of": [leaf(n) for n in range(MAX_FILTER_ENTRIES)]}]  # 1 group + 100 leaves

    with pytest.raises(FilterError) as refused:
        validate_filters(nested)

    assert refused.value.location == "filters"
    assert refused.value.reason == (
        f"{MAX_FILTER_ENTRIES + 1} entries, over the limit of {MAX_FILTER_ENTRIES}"
    )


def test_filters_over_the_size_limit_are_refused() -> None:
    with pytest.raises(FilterError) as refused:
        validate_filters([{"key": "blob", "value": "x" * MAX_FILTERS_BYTES}])

    assert refused.value.location == "filters"
    assert f"over the limit of {MAX_FILTERS_BYTES}" in refused.value.reason

"""Static files: which paths may be asked for, and when a client's copy is current."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.http_routes.routes.errors import RequestRefused
from gateway.http_routes.routes.static import etag_of, not_modified, subpath_parts


def test_a_subpath_splits_into_its_segments_ignoring_empty_ones() -> None:
    assert subpath_parts("docs//guide/") == ["docs", "guide"]
    assert subpath_parts("") == []


@pytest.mark.parametrize("subpath", ["../secret", "a/./b", "a\\..\\b", "nul\x00"])
def test_segments_that_could_leave_the_directory_are_refused(subpath: str) -> None:
    with pytest.raises(RequestRefused) as refused:
        subpath_parts(subpath)
    assert refused.value.status == 400


def test_the_etag_changes_with_the_file(tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    page.write_text("one")
    first = etag_of(page.stat())

    page.write_text("two!")
    os.utime(page, ns=(1, 1))

    assert etag_of(page.stat()) != first


@pytest.mark.parametrize(
    ("header", "matches"),
    [(None, False), ('"a"', True), ('"b", W/"a"', True), ("*", True), ('"b"', False)],
)
def test_if_none_match_names_the_current_etag(header: str | None, matches: bool) -> None:
    assert not_modified(header, '"a"') is matches

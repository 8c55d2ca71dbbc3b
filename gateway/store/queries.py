"""Named SQL queries, loaded from the `.sql` files beside this module.

A file holds blocks, each opened by a header line and a one-line comment:

    -- name: claim_jobs
    -- Claim due jobs, highest priority first.
    SELECT ...;

A header may name a dialect (`-- name: claim_jobs (sqlite)`); that block then replaces the
portable one for that dialect only. Queries use `:name` placeholders on every dialect. The
trigger tables' queries are generated from their column lists (`trigger_tables.py`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib import resources

from gateway.errors import StoreError
from gateway.store.trigger_tables import trigger_queries

DIALECTS = ("sqlite", "postgresql")
_HEADER = re.compile(r"^-- name: (?P<name>\w+)(?: \((?P<dialect>\w+)\))?\s*$")
PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
"""A `:name` placeholder (not a `::cast`); its group is the name."""


def parse_queries(text: str, origin: str) -> dict[tuple[str, str | None], str]:
    """Split a `.sql` file into `{(name, dialect or None): sql}`."""
    queries: dict[tuple[str, str | None], str] = {}
    key: tuple[str, str | None] | None = None
    lines: list[str] = []

    def flush() -> None:
        if key is None:
            return
        body = "\n".join(line for line in lines if not line.lstrip().startswith("--")).strip()
        if not body:
            raise ValueError(f"{origin}: query {key[0]} is empty")
        if key in queries:
            raise ValueError(f"{origin}: query {key[0]} is defined twice")
        queries[key] = body.rstrip(";")

    for line in text.splitlines():
        match = _HEADER.match(line)
        if match:
            flush()
            dialect = match["dialect"]
            if dialect is not None and dialect not in DIALECTS:
                raise ValueError(f"{origin}: unknown dialect {dialect!r} in {line!r}")
            key, lines = (match["name"], dialect), []
        elif key is not None:
            lines.append(line)
    flush()
    return queries


@cache
def load_queries(dialect: str) -> Mapping[str, str]:
    """Every named query for `dialect`, dialect-specific blocks winning over portable ones."""
    merged: dict[str, str] = {}
    specific: dict[str, str] = {}
    folder = resources.files("gateway.store").joinpath("sql", "queries")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        for (name, query_dialect), sql in parse_queries(entry.read_text(), entry.name).items():
            if query_dialect is None:
                if name in merged:
                    raise ValueError(f"{entry.name}: query {name} is defined in two files")
                merged[name] = sql
            elif query_dialect == dialect:
                specific[name] = sql
    merged.update(specific)
    for name, sql in trigger_queries(dialect).items():
        if name in merged:
            raise ValueError(f"generated query {name} clashes with a query file")
        merged[name] = sql
    return merged


def named_sql(queries: Mapping[str, str], name: str) -> str:
    """The SQL of the query called `name` in `queries`; StoreError when there is none."""
    try:
        return queries[name]
    except KeyError:
        raise StoreError(f"no query named {name!r}") from None

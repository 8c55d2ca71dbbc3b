"""How the command prints: aligned tables for people, JSON for programs."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO


def print_json(value: Any, out: TextIO = sys.stdout) -> None:
    """One JSON document, indented."""
    out.write(json.dumps(value, indent=2, default=str) + "\n")


def print_table(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], out: TextIO = sys.stdout
) -> None:
    """Rows as an aligned table with a header; cells are cut at 60 characters."""
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    header = [column.upper() for column in columns]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)
    ]
    for line in [header, *cells]:
        out.write(
            "  ".join(
                value.ljust(width) for value, width in zip(line, widths, strict=True)
            ).rstrip()
            + "\n"
        )
    if not cells:
        out.write("(none)\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."

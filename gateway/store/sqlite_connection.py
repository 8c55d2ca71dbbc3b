"""What every SQLite connection to a gateway database shares: the value adapters and converters,
the pragmas, the SQL functions, and running a named write's statements as one transaction."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Final

from gateway.errors import StoreError
from gateway.store.queries import load_queries, named_sql
from gateway.store.values import Json, json_bytes, utc_now
from gateway.token_text import token_hash


def format_timestamp(moment: datetime) -> str:
    """One fixed-width text form, so that timestamps compare correctly as strings."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _now_plus(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return format_timestamp(utc_now() + timedelta(seconds=seconds))


def to_json(value: Any) -> str:
    """`value` as the JSON text a JSON column holds."""
    # UUIDs and timestamps inside lists (ids = ANY(...)) travel as their text.
    return json_bytes(value, default=_json_text).decode()


def _json_text(value: Any) -> str:
    return format_timestamp(value) if isinstance(value, datetime) else str(value)


def _register_types() -> None:
    # Declared column types in the SQLite schema select these converters.
    sqlite3.register_adapter(dict, to_json)
    sqlite3.register_adapter(list, to_json)
    sqlite3.register_adapter(Json, lambda value: to_json(value.value))
    sqlite3.register_adapter(uuid.UUID, str)
    sqlite3.register_adapter(datetime, format_timestamp)
    sqlite3.register_converter("TIMESTAMPTZ", lambda raw: datetime.fromisoformat(raw.decode()))
    sqlite3.register_converter("JSONB", json.loads)
    sqlite3.register_converter("JSONB_ARRAY", json.loads)
    sqlite3.register_converter("TEXT_ARRAY", json.loads)
    sqlite3.register_converter(
        "UUID_ARRAY", lambda raw: [uuid.UUID(item) for item in json.loads(raw)]
    )
    sqlite3.register_converter("UUID", lambda raw: uuid.UUID(raw.decode()))
    sqlite3.register_converter("BOOLEAN", lambda raw: raw not in (b"0", b""))


_register_types()


def split_statements(sql: str) -> list[str]:
    """The statements of a script, in order (a statement ends with a line ending in `;`, or
    with the script)."""
    statements: list[str] = []
    statement = ""
    for line in sql.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            statements.append(statement)
            statement = ""
    if any(part.strip() and not part.strip().startswith("--") for part in statement.splitlines()):
        if not sqlite3.complete_statement(statement + ";"):
            raise StoreError(f"incomplete SQL statement at the end of the script: {statement!r}")
        statements.append(statement)
    return statements


@cache
def named_statements(query: str) -> tuple[str, ...]:
    """The statements of the SQLite query called `query`, in order."""
    return tuple(split_statements(named_sql(load_queries("sqlite"), query)))


PRAGMAS: Final = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)
"""Every connection to a gateway database runs these first."""


def sql_functions() -> dict[str, tuple[int, Callable[..., Any]]]:
    """The functions every connection registers, by name: their arity and body."""
    return {
        "now": (0, lambda: format_timestamp(utc_now())),
        "gw_now_plus": (1, _now_plus),
        "gw_sha256": (1, token_hash),
    }


def write_statements(
    conn: sqlite3.Connection, statements: Sequence[str], params: dict[str, Any]
) -> list[Any]:
    """Run `statements` as one transaction on `conn` (blocking); the last one's rows."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        *leading, last = statements
        for statement in leading:
            conn.execute(statement, params)
        rows = conn.execute(last, params).fetchall()
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return rows

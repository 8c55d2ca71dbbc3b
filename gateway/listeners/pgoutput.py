"""Decoding `pgoutput`, PostgreSQL's built-in logical decoding plugin (protocol version 1).

Every XLogData message of a logical replication stream carries one pgoutput message; `decode`
turns its bytes into one of the dataclasses below (`PgoutputError` when they are malformed):

    Begin          a transaction starts; `final_lsn` is the LSN of its commit record
    Commit         it ends; `end_lsn` is the position to confirm once its changes are stored
    Origin         the transaction was replicated from another node
    Relation       a table's schema, name and columns (name, type OID); sent before the first
                   change of the table on a connection and again after the table changed
    Type           a non-built-in type's name
    Insert         the new row
    Update         the new row, and the old one: the key columns (`K`), the whole row under
                   REPLICA IDENTITY FULL (`O`), or none when the key did not change
    Delete         the old row: the key columns (`K`), or the whole row (`O`)
    Truncate       the tables truncated
    LogicalMessage a message written with pg_logical_emit_message

Streamed (in-progress) transactions, a protocol version 2 option, are not requested and not
decoded. Column values arrive as text; `row_values` converts them by type OID into JSON values
(see `convert_text`), given the connection's session settings DateStyle=ISO and TimeZone=UTC.
"""

from __future__ import annotations

import enum
import json
import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeAlias

POSTGRES_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
"""Replication timestamps count microseconds from this instant."""


class PgoutputError(ValueError):
    """Bytes that are not a pgoutput message this decoder understands."""


class Unchanged(enum.Enum):
    """The marker of a TOASTed column an update left unchanged: its value is not sent."""

    TOAST = "unchanged-toast"


UNCHANGED_TOAST: Final = Unchanged.TOAST

TupleValue: TypeAlias = str | bytes | Unchanged | None
"""One column of a tuple: text, binary (never requested), NULL, or unchanged TOAST."""


def format_lsn(lsn: int) -> str:
    """The usual text form of a WAL position, as `pg_current_wal_lsn()` shows it (`16/B374D848`)."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    """The WAL position written `16/B374D848`."""
    high, slash, low = text.partition("/")
    try:
        if not slash:
            raise ValueError(text)
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        raise PgoutputError(f"{text!r} is not an LSN (write it like 16/B374D848)") from None


def replication_time(microseconds: int) -> datetime:
    """A replication protocol timestamp as an aware UTC datetime."""
    try:
        return POSTGRES_EPOCH + timedelta(microseconds=microseconds)
    except OverflowError:
        raise PgoutputError(f"timestamp {microseconds} is beyond the calendar") from None


@dataclass(frozen=True, slots=True)
class Begin:
    """A transaction starts."""

    final_lsn: int
    commit_time: datetime
    xid: int


@dataclass(frozen=True, slots=True)
class Commit:
    """A transaction ends; once its changes are stored, `end_lsn` is what to confirm."""

    flags: int
    commit_lsn: int
    end_lsn: int
    commit_time: datetime


@dataclass(frozen=True, slots=True)
class Origin:
    """The transaction was replicated from the node named `name`."""

    commit_lsn: int
    name: str


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a relation; `is_key` when it is part of the replica identity."""

    name: str
    type_oid: int
    type_modifier: int
    is_key: bool


@dataclass(frozen=True, slots=True)
class Relation:
    """A table as the stream describes it; changes name it by `oid`."""

    oid: int
    namespace: str
    name: str
    replica_identity: str
    columns: tuple[Column, ...]


@dataclass(frozen=True, slots=True)
class Type:
    """The name of a type that is not built in."""

    oid: int
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class Insert:
    """A row was inserted."""

    relation_oid: int
    new: tuple[TupleValue, ...]


@dataclass(frozen=True, slots=True)
class Update:
    """A row was updated; `old` is the key (`old_kind` "K") or the whole old row ("O")."""

    relation_oid: int
    old: tuple[TupleValue, ...] | None
    old_kind: str | None
    new: tuple[TupleValue, ...]


@dataclass(frozen=True, slots=True)
class Delete:
    """A row was deleted; `old` is its key (`old_kind` "K") or the whole row ("O")."""

    relation_oid: int
    old: tuple[TupleValue, ...]
    old_kind: str


@dataclass(frozen=True, slots=True)
class Truncate:
    """Tables were truncated."""

    relation_oids: tuple[int, ...]
    cascade: bool
    restart_identity: bool


@dataclass(frozen=True, slots=True)
class LogicalMessage:
    """A message written with `pg_logical_emit_message`."""

    transactional: bool
    lsn: int
    prefix: str
    content: bytes


PgoutputMessage: TypeAlias = (
    Begin | Commit | Origin | Relation | Type | Insert | Update | Delete | Truncate | LogicalMessage
)


class _Reader:
    """Big-endian fields read one after the other from a message."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def take(self, size: int) -> bytes:
        end = self._at + size
        if end > len(self._data):
            raise PgoutputError(
                f"message ends at byte {len(self._data)}, {size} more bytes expected at {self._at}"
            )
        chunk = self._data[self._at : end]
        self._at = end
        return chunk

    def byte(self) -> str:
        return self.take(1).decode("ascii", "replace")

    def int8(self) -> int:
        return int(self.take(1)[0])

    def int16(self) -> int:
        value: int = struct.unpack("!h", self.take(2))[0]
        return value

    def int32(self) -> int:
        value: int = struct.unpack("!i", self.take(4))[0]
        return value

    def uint32(self) -> int:
        value: int = struct.unpack("!I", self.take(4))[0]
        return value

    def int64(self) -> int:
        value: int = struct.unpack("!q", self.take(8))[0]
        return value

    def uint64(self) -> int:
        value: int = struct.unpack("!Q", self.take(8))[0]
        return value

    def string(self) -> str:
        end = self._data.find(b"\x00", self._at)
        if end < 0:
            raise PgoutputError(f"unterminated string at byte {self._at}")
        text = self._data[self._at : end].decode("utf-8")
        self._at = end + 1
        return text

    def tuple_data(self) -> tuple[TupleValue, ...]:
        values: list[TupleValue] = []
        for _ in range(self.int16()):
            kind = self.byte()
            if kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED_TOAST)
            elif kind in ("t", "b"):
                raw = self.take(self.int32())
                values.append(raw.decode("utf-8") if kind == "t" else raw)
            else:
                raise PgoutputError(f"unknown tuple column kind {kind!r}")
        return tuple(values)

    def finish(self, what: str) -> None:
        if self._at != len(self._data):
            raise PgoutputError(f"{len(self._data) - self._at} bytes left after a {what} message")


def decode(data: bytes) -> PgoutputMessage:
    """The pgoutput message in `data` (the payload of one XLogData message)."""
    if not data:
        raise PgoutputError("empty message")
    reader = _Reader(data)
    tag = reader.byte()
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise PgoutputError(f"unknown pgoutput message type {tag!r}")
    try:
        message = decoder(reader)
    except UnicodeDecodeError as exc:
        raise PgoutputError(f"text in a {tag!r} message is not UTF-8: {exc}") from None
    reader.finish(type(message).__name__)
    return message


def _begin(reader: _Reader) -> Begin:
    return Begin(reader.uint64(), replication_time(reader.int64()), reader.uint32())


def _commit(reader: _Reader) -> Commit:
    return Commit(reader.int8(), reader.uint64(), reader.uint64(), replication_time(reader.int64()))


def _origin(reader: _Reader) -> Origin:
    return Origin(reader.uint64(), reader.string())


def _relation(reader: _Reader) -> Relation:
    oid, namespace, name = reader.uint32(), reader.string(), reader.string()
    identity = reader.byte()
    columns = []
    for _ in range(reader.int16()):
        flags = reader.int8()
        columns.append(Column(reader.string(), reader.uint32(), reader.int32(), bool(flags & 1)))
    # pgoutput sends an empty namespace for pg_catalog.
    return Relation(oid, namespace or "pg_catalog", name, identity, tuple(columns))


def _type(reader: _Reader) -> Type:
    return Type(reader.uint32(), reader.string() or "pg_catalog", reader.string())


def _insert(reader: _Reader) -> Insert:
    oid = reader.uint32()
    _expect(reader, "N", "insert")
    return Insert(oid, reader.tuple_data())


def _update(reader: _Reader) -> Update:
    oid = reader.uint32()
    kind = reader.byte()
    old: tuple[TupleValue, ...] | None = None
    old_kind: str | None = None
    if kind in ("K", "O"):
        old, old_kind = reader.tuple_data(), kind
        kind = reader.byte()
    if kind != "N":
        raise PgoutputError(f"update: expected the new tuple ('N'), got {kind!r}")
    return Update(oid, old, old_kind, reader.tuple_data())


def _delete(reader: _Reader) -> Delete:
    oid = reader.uint32()
    kind = reader.byte()
    if kind not in ("K", "O"):
        raise PgoutputError(f"delete: expected the old tuple ('K' or 'O'), got {kind!r}")
    return Delete(oid, reader.tuple_data(), kind)


def _truncate(reader: _Reader) -> Truncate:
    count, options = reader.int32(), reader.int8()
    oids = tuple(reader.uint32() for _ in range(count))
    return Truncate(oids, cascade=bool(options & 1), restart_identity=bool(options & 2))


def _logical_message(reader: _Reader) -> LogicalMessage:
    flags, lsn, prefix = reader.int8(), reader.uint64(), reader.string()
    content = reader.take(reader.int32())
    return LogicalMessage(bool(flags & 1), lsn, prefix, content)


def _expect(reader: _Reader, tag: str, what: str) -> None:
    got = reader.byte()
    if got != tag:
        raise PgoutputError(f"{what}: expected {tag!r}, got {got!r}")


_DECODERS: Final[Mapping[str, Callable[[_Reader], PgoutputMessage]]] = {
    "B": _begin,
    "C": _commit,
    "O": _origin,
    "R": _relation,
    "Y": _type,
    "I": _insert,
    "U": _update,
    "D": _delete,
    "T": _truncate,
    "M": _logical_message,
}


# Values -------------------------------------------------------------------------------------


def row_values(relation: Relation, values: tuple[TupleValue, ...]) -> dict[str, Any]:
    """The tuple as `{column: value}`, each value converted by `convert_text`.

    NULL becomes None; an unchanged TOAST column keeps the `UNCHANGED_TOAST` marker. Binary
    values (never requested) raise `PgoutputError`.
    """
    if len(values) != len(relation.columns):
        raise PgoutputError(
            f"{relation.namespace}.{relation.name} has {len(relation.columns)} columns, the "
            f"tuple {len(values)}"
        )
    row: dict[str, Any] = {}
    for column, value in zip(relation.columns, values, strict=True):
        if isinstance(value, bytes):
            raise PgoutputError(f"column {column.name!r} arrived in binary format")
        row[column.name] = value if value is None or value is UNCHANGED_TOAST else (
            convert_text(column.type_oid, value)
        )  # fmt: skip
    return row


def convert_text(type_oid: int, text: str) -> Any:
    """The JSON value of a column's text, by its type.

    bool -> true/false; int2, int4, int8, oid -> integers; float4, float8 -> numbers (NaN and
    the infinities stay strings, JSON has no such numbers); numeric -> its exact text (a JSON
    number would round it); json, jsonb -> the parsed value (a number past a float's range as
    its text; a document too deep to parse as its text); timestamptz -> ISO 8601 with the
    offset; timestamp -> ISO 8601; date, time, uuid, text and every other type -> the text;
    bytea -> the list of its bytes; arrays of these -> lists (NULL elements None).
    """
    element = ARRAY_ELEMENTS.get(type_oid)
    if element is not None:
        try:
            parsed = _ArrayParser(text).parse()
        except PgoutputError:
            return text
        return _convert_elements(_converter(element), parsed)
    return _converter(type_oid)(text)


def _convert_elements(convert: Callable[[str], Any], items: list[Any]) -> list[Any]:
    return [
        _convert_elements(convert, item) if isinstance(item, list)
        else None if item is None else convert(item)
        for item in items
    ]  # fmt: skip


def _converter(type_oid: int) -> Callable[[str], Any]:
    return _CONVERTERS.get(type_oid, _text)


def _text(text: str) -> str:
    return text


def _bool(text: str) -> bool:
    return text == "t"


def _integer(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:
        return text


def _float(text: str) -> float | str:
    try:
        number = float(text)
    except ValueError:
        return text
    # NaN and the infinities are not JSON numbers.
    return number if math.isfinite(number) else text


def _json(text: str) -> Any:
    try:
        return json.loads(text, parse_float=_float)
    except (ValueError, RecursionError):  # deeper than Python's stack: kept as text
        return text


def _timestamp(text: str) -> str:
    # Infinity, BC dates and years past 9999 do not fit a datetime: their text is kept.
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        return text


def _bytea(text: str) -> list[int] | str:
    if not text.startswith("\\x"):
        return text
    try:
        return list(bytes.fromhex(text[2:]))
    except ValueError:
        return text


_BOOL, _BYTEA, _CHAR, _NAME, _INT8, _INT2, _INT4, _TEXT, _OID = 16, 17, 18, 19, 20, 21, 23, 25, 26
_JSON, _FLOAT4, _FLOAT8, _BPCHAR, _VARCHAR, _DATE, _TIME = 114, 700, 701, 1042, 1043, 1082, 1083
_TIMESTAMP, _TIMESTAMPTZ, _TIMETZ, _NUMERIC, _UUID, _JSONB = 1114, 1184, 1266, 1700, 2950, 3802

_CONVERTERS: Final[Mapping[int, Callable[[str], Any]]] = {
    _BOOL: _bool,
    _INT2: _integer,
    _INT4: _integer,
    _INT8: _integer,
    _OID: _integer,
    _FLOAT4: _float,
    _FLOAT8: _float,
    _JSON: _json,
    _JSONB: _json,
    _TIMESTAMP: _timestamp,
    _TIMESTAMPTZ: _timestamp,
    _BYTEA: _bytea,
}

ARRAY_ELEMENTS: Final[Mapping[int, int]] = {
    1000: _BOOL, 1001: _BYTEA, 1002: _CHAR, 1003: _NAME, 1005: _INT2, 1007: _INT4, 1009: _TEXT,
    1014: _BPCHAR, 1015: _VARCHAR, 1016: _INT8, 1021: _FLOAT4, 1022: _FLOAT8, 1028: _OID,
    199: _JSON, 1115: _TIMESTAMP, 1182: _DATE, 1183: _TIME, 1185: _TIMESTAMPTZ, 1231: _NUMERIC,
    1270: _TIMETZ, 2951: _UUID, 3807: _JSONB,
}  # fmt: skip
"""Array type OID -> element type OID, for the array types converted element by element."""


MAX_ARRAY_DIMENSIONS: Final = 6
"""PostgreSQL's own limit (MAXDIM)."""


class _ArrayParser:
    """PostgreSQL's array text (`{1,NULL,"a \\"b\\""}`, nested for more dimensions) as lists of
    element texts, None for NULL."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._at = 0

    def parse(self) -> list[Any]:
        if self._text.startswith("["):
            # Explicit bounds (`[0:1]={...}`) when a lower bound is not 1: the values are the same.
            self._at = self._text.find("=") + 1
        items = self._array()
        if self._at != len(self._text):
            raise PgoutputError(f"text after the array at {self._at}")
        return items

    def _peek(self) -> str:
        if self._at >= len(self._text):
            raise PgoutputError("array text ends early")
        return self._text[self._at]

    def _array(self, depth: int = 1) -> list[Any]:
        if depth > MAX_ARRAY_DIMENSIONS:
            raise PgoutputError(f"more than {MAX_ARRAY_DIMENSIONS} array dimensions")
        if self._peek() != "{":
            raise PgoutputError(f"expected '{{' at {self._at}")
        self._at += 1
        items: list[Any] = []
        if self._peek() == "}":
            self._at += 1
            return items
        while True:
            first = self._peek()
            if first == "{":
                items.append(self._array(depth + 1))
            elif first == '"':
                items.append(self._quoted())
            else:
                items.append(self._unquoted())
            separator = self._peek()
            self._at += 1
            if separator == "}":
                return items
            if separator != ",":
                raise PgoutputError(f"expected ',' or '}}' at {self._at - 1}")

    def _quoted(self) -> str:
        self._at += 1
        chars: list[str] = []
        while (char := self._peek()) != '"':
            if char == "\\":
                self._at += 1
                char = self._peek()
            chars.append(char)
            self._at += 1
        self._at += 1
        return "".join(chars)

    def _unquoted(self) -> str | None:
        start = self._at
        while self._peek() not in ",}":
            self._at += 1
        value = self._text[start : self._at]
        return None if value == "NULL" else value

"""The pgoutput decoder on messages recorded from PostgreSQL 15 (protocol version 1).

Recorded with `pg_logical_slot_peek_binary_changes` from a publication of two tables:
`rec_types` (REPLICA IDENTITY FULL, one column of each common type) and `rec_plain (id int
primary key, v text)`; then `rec_toast (id int primary key, mood <enum>, big text)` for the Type
message and an unchanged TOAST value, and a transaction replayed under a replication origin.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from gateway.listeners.pgoutput import (
    UNCHANGED_TOAST,
    Begin,
    Column,
    Commit,
    Delete,
    Insert,
    LogicalMessage,
    Origin,
    PgoutputError,
    Relation,
    Truncate,
    Type,
    Update,
    decode,
    format_lsn,
    parse_lsn,
    replication_time,
    row_values,
)

BEGIN = bytes.fromhex("42000000000df943280003042f8e40fb0d0000037a")
RELATION_TYPES = bytes.fromhex(
    "52000040447075626c6963007265635f74797065730066000f0169640000000017ffffffff01616d6f756e74"
    "00000006a4000c000601617400000004a0ffffffff016c6f63616c000000045affffffff0164617900000004"
    "3affffffff01646f630000000edaffffffff017261770000000072ffffffff016e756d7300000003efffffff"
    "ff017461677300000003f1ffffffff016f6b0000000010ffffffff01726174696f00000002bdffffffff0162"
    "6c6f620000000011ffffffff017569640000000b86ffffffff016269670000000014ffffffff016e6f746500"
    "00000019ffffffff"
)
INSERT_TYPES = bytes.fromhex(
    "49000040444e000f740000000131740000000531322e3530740000001d323032342d30312d31352031323a33"
    "303a30302e3132333435362b30307400000013323032342d30312d31352031343a33303a3030740000000a32"
    "3032342d30312d3135740000001f7b2261223a205b312c20325d2c202262223a207b2263223a206e756c6c7d"
    "7d74000000085b312c202278225d740000000a7b312c4e554c4c2c337d74000000137b22612062222c22635c"
    "2264222c4e554c4c7d7400000001747400000003302e3574000000085c783031303266667400000024613065"
    "65626339392d396330622d346566382d626236642d3662623962643338306131317400000010393030373139"
    "39323534373430393933740000000668c3a96c6c6f"
)
INSERT_NULLS = bytes.fromhex("49000040444e000f7400000001326e6e6e6e6e6e6e6e6e6e6e6e6e6e")
COMMIT = bytes.fromhex("4300000000000df94328000000000df943580003042f8e40fb0d")
UPDATE_FULL = bytes.fromhex(
    "55000040444f000f740000000131740000000531322e3530740000001d323032342d30312d31352031323a33"
    "303a30302e3132333435362b30307400000013323032342d30312d31352031343a33303a3030740000000a32"
    "3032342d30312d3135740000001f7b2261223a205b312c20325d2c202262223a207b2263223a206e756c6c7d"
    "7d74000000085b312c202278225d740000000a7b312c4e554c4c2c337d74000000137b22612062222c22635c"
    "2264222c4e554c4c7d7400000001747400000003302e3574000000085c783031303266667400000024613065"
    "65626339392d396330622d346566382d626236642d3662623962643338306131317400000010393030373139"
    "39323534373430393933740000000668c3a96c6c6f4e000f740000000131740000000539392e393974000000"
    "1d323032342d30312d31352031323a33303a30302e3132333435362b30307400000013323032342d30312d31"
    "352031343a33303a3030740000000a323032342d30312d3135740000001f7b2261223a205b312c20325d2c20"
    "2262223a207b2263223a206e756c6c7d7d74000000085b312c202278225d740000000a7b312c4e554c4c2c33"
    "7d74000000137b22612062222c22635c2264222c4e554c4c7d7400000001747400000003302e357400000008"
    "5c78303130326666740000002461306565626339392d396330622d346566382d626236642d36626239626433"
    "38306131317400000010393030373139393235343734303939336e"
)
RELATION_PLAIN = bytes.fromhex(
    "520000404b7075626c6963007265635f706c61696e006400020169640000000017ffffffff00760000000019"
    "ffffffff"
)
INSERT_PLAIN = bytes.fromhex("490000404b4e0002740000000131740000000161")
UPDATE_KEY = bytes.fromhex("550000404b4b00027400000001316e4e000274000000023130740000000161")
DELETE_KEY = bytes.fromhex("440000404b4b0002740000000231306e")
DELETE_FULL = bytes.fromhex("44000040444f000f7400000001326e6e6e6e6e6e6e6e6e6e6e6e6e6e")
TRUNCATE = bytes.fromhex("5400000001000000404b")
MESSAGE = bytes.fromhex("4d01000000000df955c86777000000000568656c6c6f")
TYPE_MOOD = bytes.fromhex("590000405a7075626c6963007265635f6d6f6f6400")
RELATION_TOAST = bytes.fromhex(
    "520000405f7075626c6963007265635f746f617374006400030169640000000017ffffffff006d6f6f640000"
    "00405affffffff006269670000000019ffffffff"
)
UPDATE_UNCHANGED_TOAST = bytes.fromhex("550000405f4e0003740000000131740000000373616475")
ORIGIN = bytes.fromhex("4f00000000000000017265635f6f726967696e00")

TYPES_OID = 16452
PLAIN_OID = 16459
TOAST_OID = 16479
MOOD_OID = 16474


def test_begin_gives_the_commit_lsn_time_and_transaction_id() -> None:
    begin = decode(BEGIN)

    assert isinstance(begin, Begin)
    assert format_lsn(begin.final_lsn) == "0/DF94328"
    assert begin.xid == 890
    assert begin.commit_time.tzinfo is UTC


def test_commit_gives_the_lsn_to_confirm() -> None:
    commit, begin = decode(COMMIT), decode(BEGIN)

    assert isinstance(commit, Commit)
    assert isinstance(begin, Begin)
    assert (format_lsn(commit.commit_lsn), format_lsn(commit.end_lsn)) == ("0/DF94328", "0/DF94358")
    assert commit.commit_lsn == begin.final_lsn
    assert commit.commit_time == begin.commit_time


def test_relation_lists_columns_with_type_oids_and_key_flags() -> None:
    assert decode(RELATION_PLAIN) == Relation(
        PLAIN_OID,
        "public",
        "rec_plain",
        "d",
        (Column("id", 23, -1, is_key=True), Column("v", 25, -1, is_key=False)),
    )
    full = decode(RELATION_TYPES)
    assert isinstance(full, Relation)
    assert full.replica_identity == "f"
    assert [column.name for column in full.columns][:4] == ["id", "amount", "at", "local"]
    assert full.columns[1] == Column("amount", 1700, 786438, is_key=True)  # numeric(12,2)


def test_type_names_a_type_that_is_not_built_in() -> None:
    assert decode(TYPE_MOOD) == Type(MOOD_OID, "public", "rec_mood")


def test_insert_carries_the_new_tuple_as_text_and_nulls() -> None:
    assert decode(INSERT_PLAIN) == Insert(PLAIN_OID, ("1", "a"))
    nulls = decode(INSERT_NULLS)
    assert isinstance(nulls, Insert)
    assert nulls.new == ("2", *[None] * 14)


def test_update_without_old_tuple_when_the_key_did_not_change() -> None:
    update = decode(UPDATE_UNCHANGED_TOAST)

    assert update == Update(TOAST_OID, None, None, ("1", "sad", UNCHANGED_TOAST))


def test_update_with_the_old_key_when_the_key_changed() -> None:
    assert decode(UPDATE_KEY) == Update(PLAIN_OID, ("1", None), "K", ("10", "a"))


def test_update_with_the_whole_old_row_under_replica_identity_full() -> None:
    update = decode(UPDATE_FULL)

    assert isinstance(update, Update)
    assert update.old_kind == "O"
    assert update.old is not None
    assert (update.old[1], update.new[1]) == ("12.50", "99.99")
    assert (update.old[-1], update.new[-1]) == ("héllo", None)


def test_delete_carries_the_key_or_the_whole_old_row() -> None:
    assert decode(DELETE_KEY) == Delete(PLAIN_OID, ("10", None), "K")
    full = decode(DELETE_FULL)
    assert isinstance(full, Delete)
    assert (full.old_kind, full.old[0]) == ("O", "2")


def test_truncate_lists_the_tables() -> None:
    assert decode(TRUNCATE) == Truncate((PLAIN_OID,), cascade=False, restart_identity=False)


def test_logical_message_keeps_prefix_and_content() -> None:
    message = decode(MESSAGE)

    assert isinstance(message, LogicalMessage)
    assert (message.transactional, message.prefix, message.content) == (True, "gw", b"hello")
    assert format_lsn(message.lsn) == "0/DF955C8"


def test_origin_names_the_node_a_transaction_came_from() -> None:
    assert decode(ORIGIN) == Origin(1, "rec_origin")


def test_a_recorded_row_of_every_common_type_becomes_json() -> None:
    relation, insert = decode(RELATION_TYPES), decode(INSERT_TYPES)
    assert isinstance(relation, Relation)
    assert isinstance(insert, Insert)

    row = row_values(relation, insert.new)

    assert row == {
        "id": 1,
        "amount": "12.50",
        "at": "2024-01-15T12:30:00.123456+00:00",
        "local": "2024-01-15T14:30:00",
        "day": "2024-01-15",
        "doc": {"a": [1, 2], "b": {"c": None}},
        "raw": [1, "x"],
        "nums": [1, None, 3],
        "tags": ["a b", 'c"d', None],
        "ok": True,
        "ratio": 0.5,
        "blob": [1, 2, 255],
        "uid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "big": 9007199254740993,
        "note": "héllo",
    }
    json.dumps(row, allow_nan=False)  # every value is plain JSON


def test_an_unchanged_toast_column_keeps_its_marker_and_enums_are_text() -> None:
    relation, update = decode(RELATION_TOAST), decode(UPDATE_UNCHANGED_TOAST)
    assert isinstance(relation, Relation)
    assert isinstance(update, Update)

    row = row_values(relation, update.new)

    assert row == {"id": 1, "mood": "sad", "big": UNCHANGED_TOAST}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty"),
        (b"Z\x00", "unknown pgoutput message type 'Z'"),
        (BEGIN[:-1], "more bytes expected"),
        (BEGIN + b"\x00", "1 bytes left after a Begin message"),
        (INSERT_PLAIN[:5] + b"X" + INSERT_PLAIN[6:], "insert: expected 'N'"),
        (DELETE_KEY[:5] + b"N" + DELETE_KEY[6:], "delete: expected the old tuple"),
        (INSERT_PLAIN[:8] + b"x" + INSERT_PLAIN[9:], "unknown tuple column kind 'x'"),
        (RELATION_PLAIN[:-30], "unterminated string"),
    ],
    ids=["empty", "unknown", "short", "long", "no-new", "no-old", "column-kind", "string"],
)
def test_malformed_messages_are_refused(data: bytes, problem: str) -> None:
    with pytest.raises(PgoutputError, match=problem):
        decode(data)


def test_lsn_text_round_trips() -> None:
    assert format_lsn(0x16_B374D848) == "16/B374D848"
    assert parse_lsn("16/B374D848") == 0x16_B374D848
    assert parse_lsn(format_lsn(0)) == 0
    with pytest.raises(PgoutputError, match="not an LSN"):
        parse_lsn("16B374D848")


def test_replication_time_counts_from_2000() -> None:
    assert replication_time(0) == datetime(2000, 1, 1, tzinfo=UTC)
    assert replication_time(1_500_000) == datetime(2000, 1, 1, 0, 0, 1, 500_000, tzinfo=UTC)

"""The SQLite database's files are readable by the gateway's user only."""

from __future__ import annotations

import stat
from pathlib import Path

from gateway.store.file_mode import make_database_private


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_file_is_created_private(tmp_path: Path) -> None:
    database = tmp_path / "gateway.db"

    make_database_private(database)

    assert mode_of(database) == 0o600


def test_the_files_of_an_older_database_lose_group_and_other_rights(tmp_path: Path) -> None:
    database = tmp_path / "gateway.db"
    files = [database, tmp_path / "gateway.db-wal", tmp_path / "gateway.db-shm"]
    for path in files:
        path.write_bytes(b"")
        path.chmod(0o664)

    make_database_private(database)

    assert [mode_of(path) for path in files] == [0o600] * 3

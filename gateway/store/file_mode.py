"""The SQLite database's files are the gateway's alone: mode 0600, whoever else runs on the host.

SQLite gives its ``-wal`` and ``-shm`` files the mode of the database file, so creating that file
0600 before SQLite opens it covers all three; files of an older, laxer database are tightened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_MODE = 0o600
COMPANION_SUFFIXES = ("", "-wal", "-shm", "-journal")


def make_database_private(database: Path) -> None:
    """Create `database` with mode 0600 if missing; remove group and other rights of its files."""
    descriptor = os.open(database, os.O_RDWR | os.O_CREAT, PRIVATE_MODE)
    os.close(descriptor)
    for suffix in COMPANION_SUFFIXES:
        path = Path(f"{database}{suffix}")
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(path, mode & ~0o077)

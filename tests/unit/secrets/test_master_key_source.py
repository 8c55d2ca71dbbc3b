"""Where the master key comes from: the setting, a file, or (SQLite only) a new file beside the
database, readable by its owner only."""

from __future__ import annotations

import base64
import logging
import os
import stat
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.secrets.master_key_source import load_master_key
from gateway.settings import Settings

KEY = base64.b64encode(os.urandom(32)).decode()


def settings_for(database_url: str, **values: object) -> Settings:
    return Settings.load(environ={}, database_url=database_url, **values)


def test_the_setting_wins_over_the_file(tmp_path: Path) -> None:
    other = tmp_path / "other.key"
    other.write_text(base64.b64encode(os.urandom(32)).decode())
    loaded = load_master_key(
        settings_for("postgresql://db/x", master_key=KEY, master_key_file=other)
    )
    assert loaded.key == base64.b64decode(KEY)


def test_a_key_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(KEY + "\n")
    assert load_master_key(settings_for("postgresql://db/x", master_key_file=path)).key == (
        base64.b64decode(KEY)
    )


def test_sqlite_creates_a_private_key_file_beside_the_database_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'gateway.db'}")
    with caplog.at_level(logging.INFO, logger="gateway"):
        first = load_master_key(settings)
    path = tmp_path / "gateway.db.master-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(path) in caplog.text
    assert load_master_key(settings).key == first.key


def test_postgresql_without_a_master_key_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="GATEWAY_MASTER_KEY"):
        load_master_key(settings_for("postgresql://db/x"))


@pytest.mark.parametrize(
    ("text", "reason"),
    [("not base64!", "not base64"), (base64.b64encode(b"short").decode(), "5 bytes long")],
)
def test_a_malformed_master_key_is_refused(text: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        load_master_key(settings_for("postgresql://db/x", master_key=text))


def test_the_setting_is_not_shown_in_the_settings_repr() -> None:
    assert KEY not in repr(settings_for("postgresql://db/x", master_key=KEY))

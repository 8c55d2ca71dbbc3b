"""Where the master key comes from: the `master_key` setting (base64 of 32 bytes), else the
file named by `master_key_file`, else, for SQLite only, a key file beside the database that
the first start creates with mode 0600. PostgreSQL deployments must configure one: several
instances share the database, so no instance may invent the key alone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

from gateway.errors import ConfigError
from gateway.secrets.cipher import new_key
from gateway.secrets.master_key import MasterKey, create_key_file, decode_master_key, read_key_file
from gateway.settings import Settings
from gateway.store.sqlite import sqlite_path

logger = logging.getLogger(__name__)

DEFAULT_KEY_SUFFIX: Final = ".master-key"


def default_key_file(database_url: str) -> Path | None:
    """The key file beside a SQLite database file; None for memory or PostgreSQL."""
    if not database_url.startswith("sqlite://"):
        return None
    target = sqlite_path(database_url)
    if target == ":memory:":
        return None
    database = Path(target)
    return database.with_name(database.name + DEFAULT_KEY_SUFFIX)


def load_master_key(settings: Settings) -> MasterKey:
    """The master key the settings name, creating the SQLite default on first start."""
    if settings.master_key is not None:
        return decode_master_key(settings.master_key.get_secret_value(), "GATEWAY_MASTER_KEY")
    if settings.master_key_file is not None:
        return read_key_file(settings.master_key_file)
    if settings.database_url.startswith("sqlite://"):
        return _embedded_default(settings.database_url)
    raise ConfigError(
        "a PostgreSQL database needs a master key for secret variables: set "
        "GATEWAY_MASTER_KEY (base64 of 32 random bytes) or GATEWAY_MASTER_KEY_FILE (a file "
        "holding it), the same on every instance"
    )


def _embedded_default(database_url: str) -> MasterKey:
    path = default_key_file(database_url)
    if path is None:
        # A memory database dies with the process, and so may its key.
        return MasterKey(new_key(), "memory")
    try:
        key = create_key_file(path)
    except FileExistsError:
        return read_key_file(path)
    except OSError as exc:
        raise ConfigError(f"cannot create the master key file {path}: {exc.strerror}") from None
    logger.info(
        "created the master key file %s: back it up with the database, secrets cannot be read "
        "without it",
        path,
        extra={"action": "master_key_created"},
    )
    return key

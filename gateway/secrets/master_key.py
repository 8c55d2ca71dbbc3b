"""The master key: the value, its text form (base64 of 32 bytes) and its key files."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from gateway.errors import ConfigError
from gateway.secrets.cipher import KEY_BYTES, new_key

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MasterKey:
    """The key that wraps the workspace keys, and where it was found (for messages)."""

    key: bytes = field(repr=False)
    source: str

    @property
    def fingerprint(self) -> str:
        """A short digest that tells two keys apart without revealing either."""
        return hashlib.sha256(b"gateway master key\0" + self.key).hexdigest()[:12]


def decode_master_key(text: str, source: str) -> MasterKey:
    """The key encoded as base64 in `text`; ConfigError unless it is 32 bytes."""
    try:
        key = base64.b64decode(text.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ConfigError(f"the master key in {source} is not base64") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"the master key in {source} is {len(key)} bytes long; it must be {KEY_BYTES} "
            "(create one with: head -c 32 /dev/urandom | base64)"
        )
    return MasterKey(key, source)


def encode_master_key(key: MasterKey) -> str:
    """The text of a key file: base64 and a newline."""
    return base64.b64encode(key.key).decode("ascii") + "\n"


def read_key_file(path: Path) -> MasterKey:
    """The master key kept in `path`."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the master key file {path}: {exc.strerror}") from None
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "the master key file %s can be read by other users: chmod 600 it",
            path,
            extra={"action": "master_key_permissions"},
        )
    return decode_master_key(text, str(path))


def create_key_file(path: Path) -> MasterKey:
    """A new random master key written to `path` (mode 0600), which must not exist."""
    key = MasterKey(new_key(), str(path))
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as out:
            out.write(encode_master_key(key))
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    return key

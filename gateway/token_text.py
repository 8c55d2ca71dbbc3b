"""The text of an API token: generated at random, stored only as its SHA-256, shown by its prefix.

The `token` column holds the hex digest of the text, so a copy of the database yields no usable
token; `token_prefix` keeps the first characters in clear, to recognise and revoke a token.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from typing import Final

TOKEN_LENGTH: Final = 32
PREFIX_LENGTH: Final = 10
_ALPHABET: Final = string.ascii_letters + string.digits


def new_token_text() -> str:
    """A fresh random token, as given to its owner."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(TOKEN_LENGTH))


def token_hash(text: str) -> str:
    """What the `token` column stores for `text`: its SHA-256, in hex."""
    return hashlib.sha256(text.encode()).hexdigest()


def token_prefix(text: str) -> str:
    """The clear part kept to show and revoke the token."""
    return text[:PREFIX_LENGTH]

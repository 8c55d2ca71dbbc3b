"""AES-256-GCM with a random nonce per value and a context string bound as associated data.

A sealed value is text: `gwsecret:v1:` then the URL-safe base64 of nonce + ciphertext + tag.
Opening it with another key, after any change, or under another context (a value copied to
another variable) raises `SecretUnreadable`; it never returns garbage.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import SecretUnreadable

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
SEALED_PREFIX: Final = "gwsecret:v1:"


def new_key() -> bytes:
    """A fresh random AES-256 key."""
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def is_sealed(stored: str) -> bool:
    """Whether `stored` is a sealed value (and not text written in clear)."""
    return stored.startswith(SEALED_PREFIX)


def seal(key: bytes, plaintext: bytes, context: str) -> str:
    """`plaintext` encrypted under `key`, bound to `context`."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext, context.encode())
    return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def open_sealed(key: bytes, stored: str, context: str) -> bytes:
    """The plaintext of a value sealed under `key` and `context`; `SecretUnreadable` if the
    key or context is not the one it was sealed with, or the value was changed."""
    if not is_sealed(stored):
        raise SecretUnreadable(f"the stored value for {context} is not a sealed secret")
    try:
        raw = base64.urlsafe_b64decode(stored.removeprefix(SEALED_PREFIX).encode("ascii"))
    except (binascii.Error, UnicodeEncodeError):
        raise SecretUnreadable(f"the stored value for {context} is not valid base64") from None
    if len(raw) <= NONCE_BYTES:
        raise SecretUnreadable(f"the stored value for {context} is truncated")
    try:
        return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
    except InvalidTag:
        raise SecretUnreadable(
            f"the stored value for {context} does not open: another key, or it was changed or moved"
        ) from None

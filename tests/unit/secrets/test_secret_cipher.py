"""AES-GCM sealing: only the right key, the right context and the untouched text open a value."""

from __future__ import annotations

import base64

import pytest

from gateway.errors import MasterKeyMismatch, SecretUnreadable
from gateway.secrets.cipher import SEALED_PREFIX, is_sealed, new_key, open_sealed, seal
from gateway.secrets.keeper import variable_context
from gateway.secrets.master_key import MasterKey
from gateway.secrets.workspace_keys import unwrap, wrap

CONTEXT = variable_context("acme", "f/kafka/password")


def test_a_sealed_value_opens_with_its_key_and_context() -> None:
    key = new_key()
    sealed = seal(key, "hunter2 ✓".encode(), CONTEXT)
    assert is_sealed(sealed)
    assert "hunter2" not in sealed
    assert open_sealed(key, sealed, CONTEXT).decode() == "hunter2 ✓"


def test_the_same_value_seals_differently_each_time() -> None:
    key = new_key()
    assert seal(key, b"same", CONTEXT) != seal(key, b"same", CONTEXT)


def test_another_key_cannot_open_a_value() -> None:
    sealed = seal(new_key(), b"hunter2", CONTEXT)
    with pytest.raises(SecretUnreadable, match="another key"):
        open_sealed(new_key(), sealed, CONTEXT)


@pytest.mark.parametrize("position", [0, 11, 12, 20, -1])
def test_a_tampered_value_does_not_open(position: int) -> None:
    key = new_key()
    sealed = seal(key, b"hunter2", CONTEXT)
    raw = bytearray(base64.urlsafe_b64decode(sealed.removeprefix(SEALED_PREFIX)))
    raw[position] ^= 0x01
    tampered = SEALED_PREFIX + base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(SecretUnreadable):
        open_sealed(key, tampered, CONTEXT)


def test_a_value_moved_to_another_variable_does_not_open() -> None:
    key = new_key()
    sealed = seal(key, b"hunter2", CONTEXT)
    with pytest.raises(SecretUnreadable):
        open_sealed(key, sealed, variable_context("acme", "f/kafka/other"))
    with pytest.raises(SecretUnreadable):
        open_sealed(key, sealed, variable_context("other", "f/kafka/password"))


@pytest.mark.parametrize("stored", ["hunter2", SEALED_PREFIX + "!!!", SEALED_PREFIX + "AAAA"])
def test_text_that_is_not_a_whole_sealed_value_does_not_open(stored: str) -> None:
    with pytest.raises(SecretUnreadable):
        open_sealed(new_key(), stored, CONTEXT)


def test_a_workspace_key_unwraps_only_with_its_master_key_and_workspace() -> None:
    master, other = MasterKey(new_key(), "a"), MasterKey(new_key(), "b")
    key = new_key()
    wrapped = wrap(master, "acme", key)
    assert unwrap(master, "acme", wrapped) == key
    with pytest.raises(MasterKeyMismatch, match="another master key"):
        unwrap(other, "acme", wrapped)
    with pytest.raises(MasterKeyMismatch):
        unwrap(master, "globex", wrapped)


def test_error_messages_name_the_variable_but_never_the_value() -> None:
    key = new_key()
    sealed = seal(key, b"hunter2", CONTEXT)
    with pytest.raises(SecretUnreadable) as raised:
        open_sealed(new_key(), sealed, CONTEXT)
    assert "f/kafka/password" in str(raised.value)
    assert "hunter2" not in str(raised.value)
    assert repr(MasterKey(key, "file")).count(key.hex()) == 0

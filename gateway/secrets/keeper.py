"""`SecretKeeper`: seals and opens secret variable values inside a transaction, creating a
workspace's key with its first secret. Every value is bound to its workspace and path."""

from __future__ import annotations

from gateway.errors import ConfigError, SecretUnreadable
from gateway.secrets.cipher import is_sealed, new_key, open_sealed, seal
from gateway.secrets.master_key import MasterKey
from gateway.secrets.workspace_keys import (
    lock_workspace_key,
    read_wrapped_key,
    unwrap,
    wrap,
)
from gateway.store import Store, Transaction


def variable_context(workspace_id: str, path: str) -> str:
    """The associated data of a secret variable's value."""
    return f"variable:{workspace_id}:{path}"


class SecretKeeper:
    """Seals and opens secret values with the workspace keys the master key unwraps."""

    def __init__(self, master: MasterKey) -> None:
        self.master = master
        # Unwrapped keys by workspace, each with the wrapped text it came from: a rotation
        # elsewhere changes that text, and the stale entry is then replaced.
        self._keys: dict[str, tuple[str, bytes]] = {}

    async def seal(self, tx: Transaction, workspace_id: str, path: str, value: str) -> str:
        """`value` sealed for variable `path`, under the workspace key (created if missing).

        The workspace's lock is held until `tx` ends, so a rotation cannot replace the key
        between this seal and the commit of the value."""
        await lock_workspace_key(tx, workspace_id)
        key = await self.workspace_key(tx, workspace_id, create=True)
        return seal(key, value.encode(), variable_context(workspace_id, path))

    async def open(self, tx: Transaction, workspace_id: str, path: str, stored: str) -> str:
        """The clear value of secret variable `path` from its stored form (a value still in
        clear, from a database older than encryption, is returned as it is)."""
        if not is_sealed(stored):
            return stored
        key = await self.workspace_key(tx, workspace_id, create=False)
        return open_sealed(key, stored, variable_context(workspace_id, path)).decode()

    async def workspace_key(self, tx: Transaction, workspace_id: str, *, create: bool) -> bytes:
        """The unwrapped key of a workspace; with `create` (the caller holding the workspace's
        lock), a new one when it has none."""
        wrapped = await read_wrapped_key(tx, workspace_id)
        if wrapped is None and create:
            wrapped = wrap(self.master, workspace_id, new_key())
            await tx.execute("insert_workspace_key", workspace_id=workspace_id, key=wrapped)
        if wrapped is None:
            raise SecretUnreadable(f"workspace {workspace_id!r} has sealed secrets but no key")
        cached = self._keys.get(workspace_id)
        if cached is not None and cached[0] == wrapped:
            return cached[1]
        key = unwrap(self.master, workspace_id, wrapped)
        self._keys[workspace_id] = (wrapped, key)
        return key

    async def verify(self, store: Store) -> int:
        """Unwrap every workspace key (MasterKeyMismatch at the first that does not open);
        return how many there are."""
        async with store.transaction() as tx:
            rows = await tx.fetch_all("list_workspace_keys")
        for row in rows:
            unwrap(self.master, row["workspace_id"], row["key"])
        return len(rows)


def keeper_of(store: Store) -> SecretKeeper:
    """The keeper of an opened store; ConfigError when it was opened without the master key."""
    if store.secrets is None:
        raise ConfigError(
            "secret values cannot be read or written: the store was opened without the master "
            "key (open it with gateway.runtime.open_database)"
        )
    return store.secrets

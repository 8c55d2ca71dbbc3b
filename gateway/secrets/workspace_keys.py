"""The `workspace_key` rows: one key per workspace (kind 'cloud'), stored wrapped by the master
key with the workspace id bound to it, so a wrapped key cannot serve another workspace."""

from __future__ import annotations

from gateway.errors import MasterKeyMismatch, SecretUnreadable
from gateway.secrets.cipher import open_sealed, seal
from gateway.secrets.master_key import MasterKey
from gateway.store import Transaction


def wrap_context(workspace_id: str) -> str:
    """The associated data of a workspace's wrapped key."""
    return f"workspace_key:{workspace_id}"


def wrap(master: MasterKey, workspace_id: str, key: bytes) -> str:
    """`key` encrypted under the master key, for the `workspace_key.key` column."""
    return seal(master.key, key, wrap_context(workspace_id))


def unwrap(master: MasterKey, workspace_id: str, wrapped: str) -> bytes:
    """The workspace key inside `wrapped`; MasterKeyMismatch when the master key is another."""
    try:
        return open_sealed(master.key, wrapped, wrap_context(workspace_id))
    except SecretUnreadable:
        raise MasterKeyMismatch(
            f"the master key from {master.source} does not open the key of workspace "
            f"{workspace_id!r}: this database was written with another master key (or its "
            "workspace_key row was changed); configure the master key it was created with"
        ) from None


async def lock_workspace_key(tx: Transaction, workspace_id: str) -> None:
    """Serialise the writers of a workspace's key and secrets until `tx` ends."""
    await tx.execute("api_lock_object", key=f"workspace_key/{workspace_id}")


async def read_wrapped_key(tx: Transaction, workspace_id: str) -> str | None:
    """The wrapped key of a workspace, if it has one."""
    row = await tx.fetch_one("get_workspace_key", workspace_id=workspace_id)
    return None if row is None else str(row["key"])

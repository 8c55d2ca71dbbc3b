"""Key rotation: each workspace gets a new key, every secret of it is sealed again under that
key, and the key is wrapped by the master key, or by a new master key when one is given.

One transaction per workspace, so a crash leaves every workspace either rotated or untouched;
running the rotation again finishes the job. A workspace key that the new master key already
opens (a run that stopped half-way) is taken as it is and rotated again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gateway.errors import MasterKeyMismatch, SecretUnreadable
from gateway.http_routes.api import audit
from gateway.secrets.cipher import is_sealed, new_key, open_sealed, seal
from gateway.secrets.keeper import variable_context
from gateway.secrets.master_key import MasterKey
from gateway.secrets.workspace_keys import lock_workspace_key, read_wrapped_key, unwrap, wrap
from gateway.store import Store, Transaction
from gateway.workspaces import Identity

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RotatedWorkspace:
    """What the rotation did to one workspace."""

    workspace_id: str
    secrets: int
    master_key: str
    """The fingerprint of the master key that now wraps the workspace key."""


async def rotate_keys(
    store: Store,
    master: MasterKey,
    actor: Identity,
    *,
    new_master: MasterKey | None = None,
    workspace_id: str | None = None,
) -> list[RotatedWorkspace]:
    """Rotate the key of every workspace holding secrets (or of `workspace_id` only), wrapping
    the new keys with `new_master` when given, else with `master`."""
    async with store.transaction() as tx:
        found = [row["workspace_id"] for row in await tx.fetch_all("list_workspaces_with_secrets")]
    chosen = [ws for ws in found if workspace_id is None or ws == workspace_id]
    done = []
    for ws in chosen:
        async with store.transaction() as tx:
            done.append(await _rotate_workspace(tx, ws, master, new_master or master, actor))
        logger.info(
            "rotated the key of workspace %s (%d secret(s) sealed again)",
            ws,
            done[-1].secrets,
            extra={"action": "secrets_rotate"},
        )
    return done


async def _rotate_workspace(
    tx: Transaction, workspace_id: str, master: MasterKey, target: MasterKey, actor: Identity
) -> RotatedWorkspace:
    await lock_workspace_key(tx, workspace_id)
    wrapped = await read_wrapped_key(tx, workspace_id)
    old_key = None if wrapped is None else _unwrap_either(workspace_id, wrapped, master, target)
    key = new_key()
    rows = await tx.fetch_all("list_secret_variables", workspace_id=workspace_id)
    for row in rows:
        context = variable_context(workspace_id, row["path"])
        clear = row["value"].encode()
        if is_sealed(row["value"]):
            if old_key is None:
                raise SecretUnreadable(f"workspace {workspace_id!r} has sealed secrets but no key")
            clear = open_sealed(old_key, row["value"], context)
        await tx.execute(
            "set_variable_value",
            workspace_id=workspace_id,
            path=row["path"],
            value=seal(key, clear, context),
        )
    new_wrapped = wrap(target, workspace_id, key)
    if wrapped is None:
        await tx.execute("insert_workspace_key", workspace_id=workspace_id, key=new_wrapped)
    else:
        await tx.execute("replace_workspace_key", workspace_id=workspace_id, key=new_wrapped)
    await audit.record(
        tx,
        actor,
        workspace_id,
        "secrets.rotate",
        workspace_id,
        action="update",
        parameters={
            "secrets": len(rows),
            "master_key": target.fingerprint,
            "new_master_key": target.key != master.key,
        },
    )
    return RotatedWorkspace(workspace_id, len(rows), target.fingerprint)


def _unwrap_either(workspace_id: str, wrapped: str, master: MasterKey, target: MasterKey) -> bytes:
    """The key under the current master key, or under the new one after an interrupted run."""
    try:
        return unwrap(master, workspace_id, wrapped)
    except MasterKeyMismatch:
        if target.key == master.key:
            raise
        return unwrap(target, workspace_id, wrapped)

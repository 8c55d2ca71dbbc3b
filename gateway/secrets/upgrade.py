"""Seal the secret values that older versions stored in clear; idempotent (a sealed value is
left alone), one transaction per workspace."""

from __future__ import annotations

import logging

from gateway.secrets.cipher import is_sealed
from gateway.secrets.keeper import SecretKeeper
from gateway.secrets.workspace_keys import lock_workspace_key
from gateway.store import Store

logger = logging.getLogger(__name__)


async def seal_clear_secrets(store: Store, keeper: SecretKeeper) -> int:
    """Seal every secret variable still stored in clear; return how many were sealed."""
    async with store.transaction() as tx:
        workspaces = [
            row["workspace_id"] for row in await tx.fetch_all("list_workspaces_with_secrets")
        ]
    sealed = 0
    for workspace_id in workspaces:
        if await _all_sealed(store, workspace_id):
            continue
        async with store.transaction() as tx:
            await lock_workspace_key(tx, workspace_id)
            for row in await tx.fetch_all("list_secret_variables", workspace_id=workspace_id):
                if is_sealed(row["value"]):
                    continue
                value = await keeper.seal(tx, workspace_id, row["path"], row["value"])
                await tx.execute(
                    "set_variable_value", workspace_id=workspace_id, path=row["path"], value=value
                )
                sealed += 1
    if sealed:
        logger.info(
            "sealed %d secret variable(s) stored in clear by an older version",
            sealed,
            extra={"action": "secrets_upgrade"},
        )
    return sealed


async def _all_sealed(store: Store, workspace_id: str) -> bool:
    """Whether every secret of the workspace is sealed (read without taking any write lock)."""
    async with store.transaction() as tx:
        rows = await tx.fetch_all("list_secret_variables", workspace_id=workspace_id)
    return all(is_sealed(row["value"]) for row in rows)

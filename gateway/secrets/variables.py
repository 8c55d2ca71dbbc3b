"""Variables as the store keeps them: a secret's value sealed when written, opened only when a
reader needs it (the API's audited reads, `$var:` references in resources, `gateway apply`)."""

from __future__ import annotations

from gateway.errors import SecretUnreadable
from gateway.secrets.keeper import SecretKeeper
from gateway.store import Row, Transaction


async def write_variable(
    tx: Transaction,
    keeper: SecretKeeper,
    workspace_id: str,
    path: str,
    *,
    value: str,
    is_secret: bool,
    description: str,
) -> None:
    """Create or replace a variable, sealing its value when it is a secret."""
    stored = await keeper.seal(tx, workspace_id, path, value) if is_secret else value
    await tx.execute(
        "upsert_variable",
        workspace_id=workspace_id,
        path=path,
        value=stored,
        is_secret=is_secret,
        description=description,
    )


async def clear_value(tx: Transaction, keeper: SecretKeeper, row: Row) -> str:
    """The value of a `get_variable` row, opened when it is a secret."""
    if not row["is_secret"]:
        return str(row["value"])
    workspace_id, path = row["workspace_id"], row["path"]
    try:
        return await keeper.open(tx, workspace_id, path, row["value"])
    except SecretUnreadable:
        # A rotation may have committed between reading the row and reading the key (PostgreSQL
        # reads each statement's own snapshot): read both again once.
        fresh = await tx.fetch_one("get_variable", workspace_id=workspace_id, path=path)
        if fresh is None or fresh["value"] == row["value"]:
            raise
        return await keeper.open(tx, workspace_id, path, fresh["value"])

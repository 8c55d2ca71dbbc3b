"""Resources and variables as listeners and jobs read them."""

from __future__ import annotations

from typing import Any

from gateway.errors import NotFound
from gateway.secrets.keeper import keeper_of
from gateway.secrets.variables import clear_value
from gateway.store import Store, fetch_one


async def resource_value(store: Store, workspace_id: str, path: str) -> Any:
    """The value of resource `path`, with `$var:<path>` strings replaced by variable values."""
    row = await fetch_one(store, "get_resource", workspace_id=workspace_id, path=path)
    if row is None:
        raise NotFound(f"resource not found at path {path!r} in workspace {workspace_id!r}")
    return await _interpolate(store, workspace_id, row["value"])


async def variable_value(store: Store, workspace_id: str, path: str) -> str:
    """The value of variable `path` (a secret opened with the store's keeper)."""
    async with store.transaction() as tx:
        row = await tx.fetch_one("get_variable", workspace_id=workspace_id, path=path)
        if row is None:
            raise NotFound(f"variable not found at path {path!r} in workspace {workspace_id!r}")
        if not row["is_secret"]:
            return str(row["value"])
        return await clear_value(tx, keeper_of(store), row)


async def _interpolate(store: Store, workspace_id: str, value: Any) -> Any:
    if isinstance(value, str) and value.startswith("$var:"):
        return await variable_value(store, workspace_id, value.removeprefix("$var:"))
    if isinstance(value, str) and value.startswith("$res:"):
        return await resource_value(store, workspace_id, value.removeprefix("$res:"))
    if isinstance(value, dict):
        return {k: await _interpolate(store, workspace_id, v) for k, v in value.items()}
    if isinstance(value, list):
        return [await _interpolate(store, workspace_id, v) for v in value]
    return value

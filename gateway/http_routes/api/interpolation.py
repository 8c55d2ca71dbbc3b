"""Resource values with their references resolved: `$var:<path>` becomes the variable's value
and `$res:<path>` the (itself resolved) value of that resource, at any depth of the JSON.

This is what `wmill.get_resource` reads; the caller must be able to read every referenced
object, and reading a secret this way is audited like any other read of it.
"""

from __future__ import annotations

from typing import Any, Final

from gateway.errors import InvalidInput, NotFound
from gateway.http_routes.api.auth import Caller
from gateway.http_routes.api.permissions import require_visible
from gateway.http_routes.api.variables import variable_value
from gateway.secrets.keeper import SecretKeeper
from gateway.store import Transaction

MAX_DEPTH: Final = 10
VARIABLE_REF: Final = "$var:"
RESOURCE_REF: Final = "$res:"


async def interpolate(
    tx: Transaction, secrets: SecretKeeper, caller: Caller, value: Any, depth: int = 0
) -> Any:
    """`value` with every `$var:` and `$res:` string replaced by what it names."""
    if isinstance(value, dict):
        return {
            key: await interpolate(tx, secrets, caller, item, depth) for key, item in value.items()
        }
    if isinstance(value, list):
        return [await interpolate(tx, secrets, caller, item, depth) for item in value]
    if not isinstance(value, str):
        return value
    if value.startswith(VARIABLE_REF):
        return await variable_value(tx, secrets, caller, value.removeprefix(VARIABLE_REF))
    if value.startswith(RESOURCE_REF):
        if depth >= MAX_DEPTH:
            raise InvalidInput(
                "value", f"resources refer to each other more than {MAX_DEPTH} levels deep"
            )
        path = value.removeprefix(RESOURCE_REF)
        caller.require_scope("resources", "read", path)
        row = await tx.fetch_one("get_resource", workspace_id=caller.workspace_id, path=path)
        if row is None:
            raise NotFound(f"resource not found at path {path!r}")
        require_visible(caller, path, "resource", row["extra_perms"])
        return await interpolate(tx, secrets, caller, row["value"], depth + 1)
    return value

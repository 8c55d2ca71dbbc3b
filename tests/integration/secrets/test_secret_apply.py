"""`gateway apply` writes secrets sealed and, comparing clear values, stays idempotent."""

from __future__ import annotations

from gateway.apply import Declaration, apply_declaration
from gateway.resources import variable_value
from gateway.secrets.cipher import is_sealed
from gateway.store import Store, fetch_one

SECRET = "apply-secret-5e8d"


def declaration(value: str) -> Declaration:
    return Declaration.model_validate(
        {
            "workspace": "applied",
            "variables": [{"path": "f/creds/token", "value": value, "is_secret": True}],
        }
    )


async def variable_change(store: Store, value: str) -> str:
    changes = await apply_declaration(store, declaration(value), {})
    (change,) = [c for c in changes if c.kind == "variable"]
    return change.action


async def test_apply_seals_secrets_and_leaves_an_unchanged_one_alone(store: Store) -> None:
    assert await variable_change(store, SECRET) == "created"
    row = await fetch_one(store, "get_variable", workspace_id="applied", path="f/creds/token")
    assert row is not None and is_sealed(row["value"]) and SECRET not in row["value"]

    assert await variable_change(store, SECRET) == "unchanged"
    again = await fetch_one(store, "get_variable", workspace_id="applied", path="f/creds/token")
    assert again is not None and again["value"] == row["value"]

    assert await variable_change(store, "another-value") == "updated"
    assert await variable_value(store, "applied", "f/creds/token") == "another-value"

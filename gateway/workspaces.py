"""Workspaces and their users."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.errors import InvalidInput
from gateway.store import Transaction

_WORKSPACE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{1,49}$")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a job or a write acts as."""

    username: str
    email: str

    @property
    def permissioned_as(self) -> str:
        """Windmill's owner form: `u/<username>`."""
        return f"u/{self.username}"


def check_workspace_id(workspace_id: str) -> str:
    """The id, or InvalidInput saying what a valid id looks like."""
    if not _WORKSPACE_ID.match(workspace_id):
        raise InvalidInput(
            "workspace",
            f"{workspace_id!r} is not a valid workspace id: 2-50 characters among a-z 0-9 _ -,"
            " starting with a letter or digit",
        )
    return workspace_id


async def ensure_workspace(
    tx: Transaction, workspace_id: str, owner: Identity, name: str | None = None
) -> bool:
    """Create the workspace with `owner` as its admin; False when it existed already."""
    check_workspace_id(workspace_id)
    created = await tx.fetch_one(
        "insert_workspace", id=workspace_id, name=name or workspace_id, owner=owner.email
    )
    if created is not None:
        await tx.execute(
            "upsert_user",
            workspace_id=workspace_id,
            username=owner.username,
            email=owner.email,
            is_admin=True,
            role="Admin",
        )
    return created is not None

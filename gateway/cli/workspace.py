"""`gateway workspace create ID [--name] [--owner] [--owner-email]`."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli.context import CLI_IDENTITY, opened_store
from gateway.http_routes.api import audit
from gateway.settings import Settings
from gateway.workspaces import Identity, ensure_workspace


def register(commands: Any) -> None:
    """Add `workspace` and its sub-commands."""
    group = commands.add_parser("workspace", help="create workspaces")
    sub = group.add_subparsers(dest="workspace_command", required=True, metavar="ACTION")
    cmd = sub.add_parser("create", help="a new workspace with an admin user (idempotent)")
    cmd.add_argument("id", metavar="ID", help="2-50 characters among a-z 0-9 _ -")
    cmd.add_argument("--name", help="display name (default: the id)")
    cmd.add_argument("--owner", default=CLI_IDENTITY.username, help="the admin's username")
    cmd.add_argument("--owner-email", default=CLI_IDENTITY.email, help="the admin's email")
    cmd.set_defaults(handler=create_workspace)


async def create_workspace(settings: Settings, options: argparse.Namespace) -> int:
    """Create the workspace unless it exists; print what happened."""
    owner = Identity(options.owner, options.owner_email)
    async with opened_store(settings) as store, store.transaction() as tx:
        created = await ensure_workspace(tx, options.id, owner, options.name)
        if created:
            await audit.record(
                tx, CLI_IDENTITY, options.id, "workspaces.create", options.id, action="create"
            )
    if created:
        print(f"created   workspace {options.id} (admin u/{owner.username}, {owner.email})")
    else:
        print(f"unchanged workspace {options.id} (it exists already)")
    return 0

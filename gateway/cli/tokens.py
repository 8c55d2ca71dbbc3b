"""`gateway token create --workspace ID [--admin] [--user NAME] [--label TEXT] ...`: a token for
the management API; the token itself is the last line printed."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from gateway.cli.context import CLI_IDENTITY, add_workspace_option, opened_store
from gateway.errors import NotFound
from gateway.http_routes.api import audit
from gateway.http_routes.api.tokens import issue_token
from gateway.settings import Settings
from gateway.store.values import utc_now
from gateway.token_text import token_prefix
from gateway.workspaces import Identity


def register(commands: Any) -> None:
    """Add `token` and its sub-commands."""
    group = commands.add_parser("token", help="create API tokens")
    sub = group.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    cmd = sub.add_parser("create", help="a token for one user of one workspace")
    add_workspace_option(cmd)
    cmd.add_argument("--user", default=CLI_IDENTITY.username, help="username (default: admin)")
    cmd.add_argument("--email", help="the user's email (default: the user's, or USER@localhost)")
    cmd.add_argument("--admin", action="store_true", help="make the user a workspace admin")
    cmd.add_argument("--label", default="cli", help="a note to recognise the token by")
    cmd.add_argument("--expires-in-days", type=float, help="default: never expires")
    cmd.add_argument(
        "--scope", action="append", dest="scopes", metavar="SCOPE",
        help="restrict the token, e.g. kafka_triggers:write or jobs:read (repeatable)",
    )  # fmt: skip
    cmd.set_defaults(handler=create_token)


async def create_token(settings: Settings, options: argparse.Namespace) -> int:
    """Add the user to the workspace if needed, store a token for it, print the token last."""
    workspace_id = options.workspace
    expiration = (
        utc_now() + timedelta(days=options.expires_in_days) if options.expires_in_days else None
    )
    async with opened_store(settings) as store, store.transaction() as tx:
        if await tx.fetch_one("get_workspace", id=workspace_id) is None:
            raise NotFound(
                f"workspace {workspace_id!r} not found; create it with `gateway workspace create`"
            )
        user = await tx.fetch_one("get_user", workspace_id=workspace_id, username=options.user)
        email = options.email or (user["email"] if user else f"{options.user}@localhost")
        is_admin = options.admin or bool(user and user["is_admin"])
        await tx.execute(
            "upsert_user",
            workspace_id=workspace_id,
            username=options.user,
            email=email,
            is_admin=is_admin,
            role="Admin" if is_admin else (user["role"] if user else "Developer"),
        )
        owner = Identity(options.user, email)
        text = await issue_token(
            tx,
            owner,
            workspace_id,
            label=options.label,
            expiration=expiration,
            scopes=options.scopes,
        )
        await audit.record(
            tx,
            CLI_IDENTITY,
            workspace_id,
            "users.token.create",
            token_prefix(text),
            action="create",
            parameters={"owner": owner.permissioned_as, "label": options.label},
        )
    role = "admin" if is_admin else "user"
    print(f"token for {owner.permissioned_as} ({email}, {role}) in workspace {workspace_id}:")
    print(text)
    return 0

"""`gateway scripts list|show`."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli.context import add_json_option, add_workspace_option, opened_store
from gateway.cli.output import print_json, print_table
from gateway.scripts import format_hash, latest_script
from gateway.settings import Settings
from gateway.store import fetch_all


def register(commands: Any) -> None:
    """Add `scripts` and its sub-commands."""
    group = commands.add_parser("scripts", help="list and show scripts")
    sub = group.add_subparsers(dest="scripts_command", required=True, metavar="ACTION")
    cmd = sub.add_parser("list", help="the latest version of every script")
    add_workspace_option(cmd)
    add_json_option(cmd)
    cmd.add_argument("--path-start", help="only paths starting with this")
    cmd.set_defaults(handler=list_scripts)
    cmd = sub.add_parser("show", help="one script: its code, schema and version")
    add_workspace_option(cmd)
    add_json_option(cmd)
    cmd.add_argument("path")
    cmd.set_defaults(handler=show_script)


async def list_scripts(settings: Settings, options: argparse.Namespace) -> int:
    """Print the scripts of a workspace."""
    async with opened_store(settings) as store:
        rows = await fetch_all(
            store,
            "list_latest_scripts",
            workspace_id=options.workspace,
            path_start=options.path_start,
            limit=10_000,
            offset=0,
        )
    items = [
        {
            "path": r["path"],
            "hash": format_hash(r["hash"]),
            "language": r["language"],
            "summary": r["summary"],
            "dedicated_worker": bool(r["dedicated_worker"]),
            "created_at": r["created_at"].isoformat(timespec="seconds"),
        }
        for r in rows
    ]
    if options.json:
        print_json(items)
    else:
        print_table(
            items, ["path", "hash", "language", "dedicated_worker", "created_at", "summary"]
        )
    return 0


async def show_script(settings: Settings, options: argparse.Namespace) -> int:
    """Print one script."""
    async with opened_store(settings) as store, store.transaction() as tx:
        script = await latest_script(tx, options.workspace, options.path)
    if options.json:
        print_json(
            {
                "path": script.path,
                "hash": script.hash_hex,
                "language": script.language,
                "content": script.content,
                "schema": script.schema,
                "summary": script.summary,
                "has_preprocessor": script.has_preprocessor,
                "dedicated_worker": script.dedicated_worker,
                "timeout": script.timeout,
                "created_by": script.created_by,
                "created_at": script.created_at.isoformat(),
            }
        )
        return 0
    print(f"path:      {script.path}")
    print(f"hash:      {script.hash_hex}")
    print(f"language:  {script.language}")
    print(f"arguments: {', '.join(script.arg_order) or '(none)'}")
    print(f"created:   {script.created_at.isoformat(timespec='seconds')} by {script.created_by}")
    print()
    print(script.content.rstrip())
    return 0

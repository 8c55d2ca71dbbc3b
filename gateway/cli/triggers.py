"""`gateway triggers list`."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli.context import add_json_option, add_workspace_option, opened_store
from gateway.cli.output import print_json, print_table
from gateway.settings import Settings
from gateway.store import fetch_all
from gateway.store.trigger_tables import TRIGGER_TABLES


def register(commands: Any) -> None:
    """Add `triggers` and its sub-commands."""
    group = commands.add_parser("triggers", help="list triggers of every kind")
    sub = group.add_subparsers(dest="triggers_command", required=True, metavar="ACTION")
    cmd = sub.add_parser("list", help="every trigger with its mode, holder and error")
    add_workspace_option(cmd)
    add_json_option(cmd)
    cmd.add_argument("--kind", choices=sorted(TRIGGER_TABLES), help="only this kind")
    cmd.set_defaults(handler=list_triggers)


async def list_triggers(settings: Settings, options: argparse.Namespace) -> int:
    """Print the triggers of a workspace."""
    kinds = [options.kind] if options.kind else sorted(TRIGGER_TABLES)
    found: list[dict[str, Any]] = []
    async with opened_store(settings) as store:
        for kind in kinds:
            for row in await fetch_all(
                store, f"list_{kind}_triggers", workspace_id=options.workspace
            ):
                found.append({"kind": kind, **row})
    if options.json:
        print_json(found)
        return 0
    rows = [
        {
            "kind": t["kind"],
            "path": t["path"],
            "script": t["script_path"],
            "mode": t["mode"],
            "server": t.get("server_id"),
            "last_ping": t["last_server_ping"].isoformat(timespec="seconds")
            if t.get("last_server_ping")
            else None,
            "error": t.get("error"),
        }
        for t in found
    ]
    print_table(rows, ["kind", "path", "script", "mode", "server", "last_ping", "error"])
    return 0

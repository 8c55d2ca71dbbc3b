"""`gateway alerts list|ack`: what the alert rules, the listeners and the queue raised.

An alert is `open` until its condition clears (`resolved`) or a person closes it
(`acknowledged`).
"""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli.context import add_json_option, add_workspace_option, opened_store
from gateway.cli.output import print_json, print_table
from gateway.settings import Settings
from gateway.store import Row, fetch_all


def register(commands: Any) -> None:
    """Add `alerts` and its sub-commands."""
    group = commands.add_parser("alerts", help="list and acknowledge alerts")
    sub = group.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    cmd = sub.add_parser("list", help="open alerts, newest first")
    add_workspace_option(cmd)
    add_json_option(cmd)
    cmd.add_argument("--all", action="store_true", help="resolved and acknowledged ones too")
    cmd.add_argument("--limit", type=int, default=50)
    cmd.set_defaults(handler=list_command)
    cmd = sub.add_parser("ack", help="acknowledge open alerts: they are closed")
    add_workspace_option(cmd)
    cmd.add_argument("alert_ids", type=int, nargs="+")
    cmd.set_defaults(handler=ack_command)


async def list_command(settings: Settings, options: argparse.Namespace) -> int:
    """Print a workspace's alerts."""
    async with opened_store(settings) as store:
        rows = await fetch_all(
            store,
            "list_workspace_alerts",
            workspace_id=options.workspace,
            include_closed=options.all,
            limit=options.limit,
        )
    found = [_alert_json(row) for row in rows]
    if options.json:
        print_json(found)
        return 0
    print_table(found, ["id", "alert_type", "state", "created_at", "resource", "message"])
    return 0


async def ack_command(settings: Settings, options: argparse.Namespace) -> int:
    """Close open alerts; exit 1 when one of them was not open in the workspace."""
    missing = 0
    async with opened_store(settings) as store:
        for alert_id in options.alert_ids:
            async with store.transaction() as tx:
                closed = await tx.fetch_one(
                    "acknowledge_alert", workspace_id=options.workspace, id=alert_id
                )
            if closed is None:
                missing += 1
                print(f"{alert_id}: no open alert with this id in {options.workspace}")
            else:
                print(f"{alert_id}: acknowledged")
    return 1 if missing else 0


def _alert_json(row: Row) -> dict[str, Any]:
    state = "open"
    if row["acknowledged"]:
        state = "acknowledged" if row["acknowledged_workspace"] else "resolved"
    return {
        "id": row["id"],
        "alert_type": row["alert_type"],
        "state": state,
        "created_at": row["created_at"].isoformat(timespec="seconds"),
        "resource": row["resource"],
        "message": row["message"],
    }

"""`gateway audit list`: who changed what in a workspace, and who read which secret.

Filters: `--user`, `--operation` (`variables` also finds `variables.create`), `--resource` (a
path, or a folder such as `f/ops`), `--action`, `--since` (an ISO time or an age: `30m`, `2h`,
`7d`); newest first, a page at a time.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from gateway.cli.context import add_json_option, add_workspace_option, opened_store
from gateway.cli.output import print_json, print_table
from gateway.http_routes.api.audit import ALL_TIME
from gateway.settings import Settings
from gateway.store import Row, fetch_all
from gateway.store.values import utc_now

AGE: Final = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def register(commands: Any) -> None:
    """Add `audit` and its sub-command."""
    group = commands.add_parser("audit", help="read the audit log")
    sub = group.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    cmd = sub.add_parser("list", help="audit entries, newest first")
    add_workspace_option(cmd)
    add_json_option(cmd)
    cmd.add_argument("--user", help="only what this username did")
    cmd.add_argument("--operation", help="e.g. variables.decrypt_secret, or kafka_triggers")
    cmd.add_argument("--resource", help="a path, or a folder such as f/ops")
    cmd.add_argument("--action", choices=["create", "update", "delete", "execute"])
    cmd.add_argument("--since", type=since_moment, help="ISO time or age: 30m, 2h, 7d")
    cmd.add_argument("--page", type=positive_int, default=1, help="page number, from 1")
    cmd.add_argument("--per-page", type=positive_int, default=50, help="entries per page")
    cmd.set_defaults(handler=list_command)


def positive_int(text: str) -> int:
    """A page number or size: a whole number from 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1")
    return int(text)


def since_moment(text: str, now: datetime | None = None) -> datetime:
    """`--since`: an ISO 8601 time (UTC when it names no zone) or an age before `now`."""
    age = AGE.match(text.strip())
    if age:
        seconds = float(age.group(1)) * _UNIT_SECONDS[age.group(2)]
        return (now or utc_now()) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an ISO time (2026-01-31T08:00) nor an age (30m, 2h, 7d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def list_command(settings: Settings, options: argparse.Namespace) -> int:
    """Print a page of the workspace's audit log."""
    async with opened_store(settings) as store:
        rows = await fetch_all(
            store,
            "list_audit_entries",
            workspace_id=options.workspace,
            username=options.user,
            operation=options.operation,
            resource=options.resource,
            action_kind=options.action,
            since=options.since or ALL_TIME,
            limit=options.per_page,
            offset=(options.page - 1) * options.per_page,
        )
    entries = [audit_entry(row) for row in rows]
    if options.json:
        print_json(entries, sys.stdout)
        return 0
    columns = ["id", "timestamp", "username", "operation", "action_kind", "resource"]
    print_table(entries, columns, sys.stdout)
    return 0


def audit_entry(row: Row) -> dict[str, Any]:
    """One audit row as printed (and as `--json` gives it)."""
    return {
        "id": row["id"],
        "timestamp": row["timestamp"].isoformat(timespec="seconds"),
        "username": row["username"],
        "email": row["email"],
        "operation": row["operation"],
        "action_kind": row["action_kind"],
        "resource": row["resource"],
        "parameters": row["parameters"],
    }

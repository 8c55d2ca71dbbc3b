"""`gateway quarantine list|show|redrive`: events that could not become jobs."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli.context import add_json_option, add_workspace_option, opened_store
from gateway.cli.output import print_json, print_table
from gateway.settings import Settings
from gateway.triggers.quarantine import (
    get_quarantined_event,
    list_quarantined_events,
    redrive,
)


def register(commands: Any) -> None:
    """Add `quarantine` and its sub-commands."""
    group = commands.add_parser("quarantine", help="events that could not become jobs")
    sub = group.add_subparsers(dest="quarantine_command", required=True, metavar="ACTION")
    cmd = sub.add_parser("list", help="quarantined events, newest first")
    add_workspace_option(cmd)
    add_json_option(cmd)
    cmd.add_argument("--kind", help="only events of this trigger kind")
    cmd.add_argument("--trigger", help="only events of this trigger path")
    cmd.add_argument("--limit", type=int, default=30)
    cmd.set_defaults(handler=list_command)
    cmd = sub.add_parser("show", help="one quarantined event with its raw bytes")
    add_workspace_option(cmd)
    add_json_option(cmd)
    cmd.add_argument("event_id", type=int)
    cmd.set_defaults(handler=show_command)
    cmd = sub.add_parser("redrive", help="submit quarantined events again")
    add_workspace_option(cmd)
    cmd.add_argument("event_ids", type=int, nargs="+")
    cmd.set_defaults(handler=redrive_command)


async def list_command(settings: Settings, options: argparse.Namespace) -> int:
    """Print a page of quarantined events."""
    async with opened_store(settings) as store:
        found = await list_quarantined_events(
            store,
            options.workspace,
            trigger_kind=options.kind,
            trigger_path=options.trigger,
            per_page=options.limit,
        )
    if options.json:
        print_json([entry.to_json() for entry in found])
        return 0
    rows = [
        {
            "id": e.id,
            "trigger": f"{e.trigger_kind}:{e.trigger_path}",
            "error": e.error,
            "bytes": len(e.raw),
            "created": e.created_at.isoformat(timespec="seconds"),
            "redriven_job": str(e.redriven_job_id) if e.redriven_job_id else None,
        }
        for e in found
    ]
    print_table(rows, ["id", "trigger", "bytes", "created", "redriven_job", "error"])
    return 0


async def show_command(settings: Settings, options: argparse.Namespace) -> int:
    """Print one quarantined event."""
    async with opened_store(settings) as store:
        entry = await get_quarantined_event(store, options.workspace, options.event_id)
    shown = entry.to_json()
    if options.json:
        print_json(shown)
        return 0
    for key, value in shown.items():
        print(f"{key + ':':16} {value if value is not None else '-'}")
    return 0


async def redrive_command(settings: Settings, options: argparse.Namespace) -> int:
    """Redrive events; exit 1 when any still cannot become a job."""
    failed = 0
    async with opened_store(settings) as store:
        for event_id in options.event_ids:
            outcome = await redrive(store, options.workspace, event_id)
            if outcome.job_id is not None:
                print(f"{event_id}: job {outcome.job_id}")
            else:
                failed += 1
                print(f"{event_id}: still quarantined: {outcome.error}")
    return 1 if failed else 0

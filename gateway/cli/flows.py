"""`gateway flows list|get`, and the steps of a flow job as `jobs get` prints them."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from gateway.cli.context import add_json_option, add_workspace_option, opened_store
from gateway.cli.output import print_json, print_table
from gateway.errors import NotFound
from gateway.settings import Settings
from gateway.store import Store, fetch_all, fetch_one


def register(commands: Any) -> None:
    """Add `flows` and its sub-commands."""
    group = commands.add_parser("flows", help="list and show flows")
    sub = group.add_subparsers(dest="flows_command", required=True, metavar="ACTION")
    cmd = sub.add_parser("list", help="every flow of a workspace")
    add_workspace_option(cmd)
    add_json_option(cmd)
    cmd.add_argument("--path-start", help="only paths starting with this")
    cmd.add_argument("--archived", action="store_true", help="include archived flows")
    cmd.set_defaults(handler=list_flows)
    cmd = sub.add_parser("get", help="one flow: its latest definition and version")
    add_workspace_option(cmd)
    add_json_option(cmd)
    cmd.add_argument("path")
    cmd.set_defaults(handler=get_flow)


async def list_flows(settings: Settings, options: argparse.Namespace) -> int:
    """Print the flows of a workspace."""
    async with opened_store(settings) as store:
        rows = await fetch_all(
            store,
            "api_list_flows",
            workspace_id=options.workspace,
            show_archived=options.archived,
            path_start=options.path_start,
            path_exact=None,
            is_admin=True,
            user_prefix="",
            limit=10_000,
            offset=0,
        )
    items = [
        {
            "path": r["path"],
            "summary": r["summary"],
            "archived": bool(r["archived"]),
            "edited_by": r["edited_by"],
            "edited_at": r["edited_at"].isoformat(timespec="seconds"),
        }
        for r in rows
    ]
    if options.json:
        print_json(items)
    else:
        print_table(items, ["path", "archived", "edited_by", "edited_at", "summary"])
    return 0


async def get_flow(settings: Settings, options: argparse.Namespace) -> int:
    """Print one flow."""
    async with opened_store(settings) as store:
        row = await fetch_one(store, "get_flow", workspace_id=options.workspace, path=options.path)
    if row is None:
        raise NotFound(f"flow not found at path {options.path!r} in {options.workspace!r}")
    flow = {
        "path": row["path"],
        "version": row["version_id"],
        "summary": row["summary"],
        "description": row["description"],
        "archived": bool(row["archived"]),
        "edited_by": row["edited_by"],
        "edited_at": row["edited_at"].isoformat(),
        "schema": row["schema"],
        "value": row["value"],
    }
    if options.json:
        print_json(flow)
        return 0
    print(f"path:     {flow['path']}")
    print(f"version:  {flow['version']}")
    print(f"edited:   {row['edited_at'].isoformat(timespec='seconds')} by {flow['edited_by']}")
    if flow["archived"]:
        print("archived: yes")
    print()
    print_table(flow_modules(row["value"]), ["id", "type", "summary"])
    return 0


def flow_modules(value: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The top-level modules of a flow definition, then its failure module."""
    modules = [*value.get("modules", [])]
    if value.get("failure_module"):
        modules.append(value["failure_module"])
    return [
        {"id": m.get("id"), "type": (m.get("value") or {}).get("type"), "summary": m.get("summary")}
        for m in modules
    ]


async def job_flow_status(store: Store, workspace_id: str, job_id: UUID) -> Any:
    """A flow job's `flow_status` (None for a job that is not a flow)."""
    row = await fetch_one(store, "get_job_flow_status", workspace_id=workspace_id, id=job_id)
    # Two columns, not COALESCE: SQLite types a JSON column only when it is selected as it is.
    return (row["live"] or row["completed"]) if row else None


def flow_steps(flow_status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per module of a flow job: its id, status and job (or jobs, for loops and
    parallel branches)."""
    modules = [*flow_status.get("modules", [])]
    if flow_status.get("failure_module"):
        modules.append(flow_status["failure_module"])
    rows = []
    for module in modules:
        jobs = module.get("flow_jobs") or []
        rows.append(
            {
                "module": module.get("id"),
                "status": module.get("type"),
                "job": module.get("job") or (", ".join(jobs) if jobs else None),
            }
        )
    return rows


def print_flow_steps(flow_status: Mapping[str, Any]) -> None:
    """The steps of a flow job as a table, after the step it is at."""
    step = flow_status.get("step")
    print(f"{'step:':14} {json.dumps(step) if step is not None else '-'}")
    print_table(flow_steps(flow_status), ["module", "status", "job"], out=sys.stdout)

"""`gateway triggers list` and `gateway triggers status [--watch]`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from typing import Any

from gateway.cli.context import add_json_option, add_workspace_option, opened_store
from gateway.cli.output import print_json, print_table
from gateway.errors import InvalidInput
from gateway.listeners.supervisor import LeaseTimings
from gateway.observability.source_lag import LagProbe, SourceLag
from gateway.observability.trigger_health import TriggerHealth, read_trigger_health, with_lags
from gateway.settings import Settings
from gateway.store import Store, fetch_all
from gateway.store.trigger_tables import TRIGGER_TABLES

STATUS_COLUMNS = (
    "kind", "path", "mode", "state", "holder", "ping", "last_event", "events_1m", "failed_1h",
    "quarantined", "lag", "error",
)  # fmt: skip
CLEAR_SCREEN = "\x1b[H\x1b[2J"


def register(commands: Any) -> None:
    """Add `triggers` and its sub-commands."""
    group = commands.add_parser("triggers", help="list triggers of every kind")
    sub = group.add_subparsers(dest="triggers_command", required=True, metavar="ACTION")
    cmd = sub.add_parser("list", help="every trigger with its mode, holder and error")
    add_workspace_option(cmd)
    add_json_option(cmd)
    cmd.add_argument("--kind", choices=sorted(TRIGGER_TABLES), help="only this kind")
    cmd.set_defaults(handler=list_triggers)
    cmd = sub.add_parser(
        "status", help="the health of every trigger: holder, events, failures, lag"
    )
    add_workspace_option(cmd)
    add_json_option(cmd)
    cmd.add_argument("--kind", choices=sorted(TRIGGER_TABLES), help="only this kind")
    cmd.add_argument("--watch", action="store_true", help="refresh until interrupted")
    cmd.add_argument(
        "--interval", type=float, default=2.0, help="seconds between refreshes (with --watch)"
    )
    cmd.add_argument("--no-lag", action="store_true", help="do not read the lag from the sources")
    cmd.set_defaults(handler=status_command)


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


async def status_command(settings: Settings, options: argparse.Namespace) -> int:
    """Print the triggers' health once, or again every `--interval` seconds with `--watch`."""
    if options.interval <= 0:
        raise InvalidInput("--interval", "must be a positive number of seconds")
    async with opened_store(settings) as store:
        lags = None
        if not options.no_lag:
            lags = LagProbe(
                store, ttl_s=settings.source_lag_cache_s, timeout_s=settings.source_lag_timeout_s
            )
        while True:
            found = await _health(store, settings, options, lags)
            if options.json and options.watch:
                print(json.dumps([status.to_json() for status in found], default=str), flush=True)
            elif options.json:
                print_json([status.to_json() for status in found])
            else:
                if options.watch:
                    sys.stdout.write(CLEAR_SCREEN)
                    print(f"{options.workspace} at {datetime.now().isoformat(timespec='seconds')}")
                print_table([_status_row(status) for status in found], STATUS_COLUMNS)
                sys.stdout.flush()
            if not options.watch:
                return 0
            await asyncio.sleep(options.interval)


async def _health(
    store: Store, settings: Settings, options: argparse.Namespace, lags: LagProbe | None
) -> list[TriggerHealth]:
    found = await read_trigger_health(
        store, options.workspace, LeaseTimings.from_settings(settings)
    )
    if options.kind:
        found = [status for status in found if status.trigger.kind == options.kind]
    return found if lags is None else await with_lags(found, lags)


def _status_row(status: TriggerHealth) -> dict[str, Any]:
    return {
        "kind": status.trigger.kind,
        "path": status.trigger.path,
        "mode": status.mode,
        "state": status.state.value,
        "holder": status.server_id,
        "ping": _age(status.last_ping_age_s),
        "last_event": _age(status.last_event_age_s),
        "events_1m": status.events_last_minute,
        "failed_1h": status.failed_last_hour,
        "quarantined": status.quarantined,
        "lag": _lag(status.lag),
        "error": status.error,
    }


def _age(seconds: float | None) -> str | None:
    """`42s`, `7m`, `3h` or `2d` ago; None when there is nothing to measure."""
    if seconds is None:
        return None
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _lag(lag: SourceLag | None) -> str | None:
    if lag is None:
        return None
    return "unknown" if lag.value is None else f"{lag.value} {lag.unit}"

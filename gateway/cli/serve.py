"""`gateway serve`, `gateway worker`, `gateway migrate`, `gateway apply`."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from gateway.apply import apply_declaration, load_declaration
from gateway.runtime import Gateway, open_database
from gateway.secrets.unlock import unlock_secrets
from gateway.settings import Settings
from gateway.store import open_store
from gateway.store.migrations import migrate


def register(commands: Any) -> None:
    """Add the commands of this module."""
    cmd = commands.add_parser("serve", help="run the gateway: HTTP API, listeners and executor")
    cmd.add_argument("--no-executor", action="store_true", help="do not run jobs here")
    cmd.set_defaults(handler=run_serve)
    cmd = commands.add_parser("worker", help="run only the executor (no HTTP server)")
    cmd.set_defaults(handler=run_worker)
    cmd = commands.add_parser("migrate", help="create or upgrade the database schema")
    cmd.set_defaults(handler=run_migrate)
    cmd = commands.add_parser("apply", help="apply a declaration file (idempotent)")
    cmd.add_argument("-f", "--file", required=True, type=Path, help="the gateway.yaml to apply")
    cmd.set_defaults(handler=run_apply)


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def run_serve(settings: Settings, options: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM, then stop gracefully."""
    async with Gateway.running(settings, run_executor=not options.no_executor) as gateway:
        print(
            f"gateway {gateway.instance_name} listening on "
            f"http://{settings.http_host}:{gateway.http_port}",
            file=sys.stderr,
            flush=True,
        )
        await _until_signalled()
    return 0


async def run_worker(settings: Settings, options: argparse.Namespace) -> int:
    """Run jobs until SIGINT or SIGTERM."""
    async with Gateway.running(settings, serve_http=False, run_listeners=False):
        await _until_signalled()
    return 0


async def run_migrate(settings: Settings, options: argparse.Namespace) -> int:
    """Apply the missing migrations and say which; then seal secrets stored in clear."""
    store = await open_store(settings.database_url)
    try:
        applied = await migrate(store)
        await unlock_secrets(store, settings)
    finally:
        await store.close()
    for migration in applied:
        print(f"applied {migration.version:04d}_{migration.name}")
    if not applied:
        print("the schema is up to date")
    return 0


async def run_apply(settings: Settings, options: argparse.Namespace) -> int:
    """Validate the whole file, then apply it in one transaction."""
    declaration, sources = load_declaration(options.file)
    store = await open_database(settings)
    try:
        changes = await apply_declaration(store, declaration, sources)
    finally:
        await store.close()
    for change in changes:
        print(change)
    changed = sum(1 for c in changes if c.action != "unchanged")
    print(f"{changed} change(s), {len(changes) - changed} unchanged")
    return 0

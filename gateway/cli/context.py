"""What the read/write commands share: the workspace option, the store, the acting user."""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gateway.runtime import open_database
from gateway.settings import Settings
from gateway.store import Store
from gateway.workspaces import Identity

CLI_IDENTITY = Identity("admin", "admin@localhost")


def add_workspace_option(cmd: argparse.ArgumentParser) -> None:
    """`-w/--workspace`, defaulting to GATEWAY_WORKSPACE or `demo`."""
    cmd.add_argument(
        "-w",
        "--workspace",
        default=os.environ.get("GATEWAY_WORKSPACE", "demo"),
        help="workspace id (default: $GATEWAY_WORKSPACE or demo)",
    )


def add_json_option(cmd: argparse.ArgumentParser) -> None:
    """`--json`: print JSON instead of a table."""
    cmd.add_argument("--json", action="store_true", help="print JSON")


@asynccontextmanager
async def opened_store(settings: Settings) -> AsyncIterator[Store]:
    """The store, migrated, closed afterwards."""
    store = await open_database(settings)
    try:
        yield store
    finally:
        await store.close()

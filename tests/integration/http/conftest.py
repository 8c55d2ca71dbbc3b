"""Routes served over a real socket: a gateway (store and executor) on each dialect, with the
route endpoint mounted at `/api/r` of an app that uvicorn serves on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp

from gateway.http_routes.routes import RouteEndpoint, RouteOptions, route_path_key, routes_changed
from gateway.http_routes.server import server_config
from gateway.runtime import Gateway
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.trigger_tables import COLUMN_DEFAULTS, TRIGGER_TABLES

from ..support import OWNER, WS, add_scripts
from ..triggers.support import unique_path

SCRIPTS = {
    "echo": "def main(**kwargs):\n    return kwargs\n",
    "respond": "def main(answer=None):\n    return answer\n",
    "fail": "def main(**kwargs):\n    raise RuntimeError('it failed')\n",
    "slow": "import time\n\ndef main(**kwargs):\n    time.sleep(60)\n    return 'late'\n",
    "event": (
        "def preprocessor(event):\n    return {'seen': event}\n\ndef main(seen):\n    return seen\n"
    ),
    "legacy": (
        "def preprocessor(wm_trigger, **body):\n"
        "    return {'seen': {'body': body, 'wm_trigger': wm_trigger}}\n\n"
        "def main(seen):\n    return seen\n"
    ),
}


@dataclass
class Served:
    """The routes of one gateway, and a client for them."""

    store: Store
    endpoint: RouteEndpoint
    client: httpx.AsyncClient
    base_url: str

    async def add_route(self, route_path: str, **columns: Any) -> str:
        """A route on `route_path`; the trigger's path."""
        return await add_route(self.store, route_path, **columns)


async def add_route(
    store: Store,
    route_path: str,
    *,
    script: str = "echo",
    http_method: str = "post",
    notify: bool = True,
    **columns: Any,
) -> str:
    """Write an `http_trigger` row as the API would, notifying the change unless told not to."""
    path = unique_path("route")
    workspaced = bool(columns.get("workspaced_route", False))
    values = {
        **{
            column: COLUMN_DEFAULTS.get(column)
            for column in TRIGGER_TABLES["http"].writable_columns
        },
        "path": path,
        "script_path": f"f/t/{script}" if script else "",
        "is_flow": False,
        "workspace_id": WS,
        "edited_by": OWNER.username,
        "email": OWNER.email,
        "permissioned_as": OWNER.permissioned_as,
        "route_path": route_path,
        "route_path_key": route_path_key(route_path, WS if workspaced else None),
        "http_method": http_method,
        **columns,
    }
    values.pop("edited_at")
    async with store.transaction() as tx:
        await tx.execute("upsert_http_trigger", **values)
        if notify:
            await routes_changed(tx)
    return path


async def add_resource(store: Store, value: dict[str, Any], resource_type: str = "object") -> str:
    """A resource of the test user holding `value`; its path."""
    path = unique_path("auth")
    async with store.transaction() as tx:
        await tx.execute(
            "upsert_resource",
            workspace_id=WS,
            path=path,
            value=value,
            description=None,
            resource_type=resource_type,
            created_by=OWNER.username,
        )
    return path


async def edit_route(store: Store, path: str, *, notify: bool = True, **columns: Any) -> None:
    """Change columns of a route's row (which moves its `edited_at`)."""
    async with store.transaction() as tx:
        row = await tx.fetch_one("get_http_trigger", workspace_id=WS, path=path)
        assert row is not None
        writable = set(TRIGGER_TABLES["http"].writable_columns) - {"edited_at"}
        await tx.execute("upsert_http_trigger", **{**{c: row[c] for c in writable}, **columns})
        if notify:
            await routes_changed(tx)


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the test decides when it stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """Serve `app` on a free loopback port, as the gateway serves it; its base URL."""
    server = _Server(server_config(app, "127.0.0.1", 0))
    task = asyncio.create_task(server.serve(), name="test:uvicorn")
    try:
        while not server.started:
            assert not task.done(), "uvicorn did not start"
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def served_routes(gateway: Gateway, options: RouteOptions) -> AsyncIterator[Served]:
    """The route endpoint of `gateway`, served, with a client."""
    endpoint = RouteEndpoint(gateway.store, options)
    app = Starlette(routes=[Mount("/api/r", app=endpoint)])
    try:
        async with (
            serving(app) as base_url,
            httpx.AsyncClient(base_url=f"{base_url}/api/r", timeout=60.0) as client,
        ):
            yield Served(gateway.store, endpoint, client, base_url)
    finally:
        await endpoint.close()


@pytest.fixture
def sqlite_database_url(tmp_path: Path) -> str:
    """A SQLite database, for modules whose behaviour does not depend on the dialect."""
    return f"sqlite:///{tmp_path / 'gateway.db'}"


@pytest.fixture
def route_options() -> RouteOptions:
    """Route options of the tests: a small body limit, a long version check interval (so that
    only notifications make changes visible, unless a test says otherwise)."""
    return RouteOptions(max_body_bytes=64 * 1024, version_check_interval_s=3600.0)


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """A gateway with its executor and the test scripts; no HTTP server of its own."""
    async with Gateway.running(settings, serve_http=False, run_listeners=False) as running:
        await add_scripts(running.store, **SCRIPTS)
        yield running


@pytest.fixture
async def served(gateway: Gateway, route_options: RouteOptions) -> AsyncIterator[Served]:
    """The routes of `gateway` on a real socket."""
    async with served_routes(gateway, route_options) as routes:
        yield routes

"""The API under test: in-process over ASGI (no socket, no executor), or a running gateway.

Both come with workspace `test` whose admin is alice (the owner of tests/integration/support),
a script `f/t/hello`, and a token for alice.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from windmill_api.client import AuthenticatedClient

from gateway.http_routes.api.audit import ALL_TIME
from gateway.http_routes.api.tokens import issue_token
from gateway.runtime import Gateway
from gateway.settings import Settings
from gateway.store import Store, fetch_all
from gateway.workspaces import Identity

from ..support import OWNER, WS, add_scripts

HELLO = "def main(name: str = 'world'):\n    return {'hello': name}\n"


@dataclass
class Api:
    """The API of one gateway, and clients for it."""

    store: Store
    base_url: str
    token: str
    transport: httpx.AsyncBaseTransport | None = None
    exit_stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    async def http(self, token: str | None = None) -> httpx.AsyncClient:
        """A raw HTTP client sending `token` (alice's by default)."""
        client = httpx.AsyncClient(
            base_url=self.base_url,
            transport=self.transport,
            headers={"Authorization": f"Bearer {token or self.token}"},
            timeout=60.0,
        )
        return await self.exit_stack.enter_async_context(client)

    async def client(self, token: str | None = None) -> AuthenticatedClient:
        """The `windmill-api` client, as a Windmill user would build it."""
        client = AuthenticatedClient(
            base_url=self.base_url, token=token or self.token, timeout=httpx.Timeout(60.0)
        )
        if self.transport is not None:
            client.set_async_httpx_client(await self.http(token))
        return client

    async def token_for(
        self, owner: Identity, workspace_id: str | None = WS, scopes: list[str] | None = None
    ) -> str:
        """A new token acting as `owner`."""
        async with self.store.transaction() as tx:
            return await issue_token(tx, owner, workspace_id, label="test", scopes=scopes)

    async def audit_operations(self, workspace_id: str = WS) -> list[str]:
        """The operations of the workspace's audit log, oldest first."""
        rows = await fetch_all(
            self.store,
            "list_audit_entries",
            username=None,
            resource=None,
            action_kind=None,
            since=ALL_TIME,
            workspace_id=workspace_id,
            operation=None,
            limit=1000,
            offset=0,
        )
        return [row["operation"] for row in reversed(rows)]


async def _seeded(store: Store, base_url: str, **api: Any) -> Api:
    await add_scripts(store, hello=HELLO)
    async with store.transaction() as tx:
        token = await issue_token(tx, OWNER, WS, label="test")
    return Api(store, base_url, token, **api)


@pytest.fixture
async def asgi_api(store: Store, settings: Settings) -> AsyncIterator[Api]:
    """The API in process, over httpx's ASGI transport; no executor runs."""
    app = Gateway(settings, store).app
    api = await _seeded(store, "http://gateway.test/api", transport=httpx.ASGITransport(app=app))
    async with api.exit_stack:
        yield api


@pytest.fixture
def http_port() -> int:
    """The port the running gateway binds (0: any free one)."""
    return 0


@pytest.fixture
async def served_api(settings: Settings, http_port: int) -> AsyncIterator[Api]:
    """A running gateway with its executor, on a real socket."""
    running = settings.model_copy(update={"http_port": http_port})
    async with Gateway.running(running) as gateway:
        api = await _seeded(gateway.store, f"http://127.0.0.1:{gateway.http_port}/api")
        async with api.exit_stack:
            yield api


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port

"""What the observability tests share: trigger rows of any kind, resources, a webhook receiver
of their own, and scrape parsing."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from gateway.listeners.lease import TriggerRef
from gateway.settings import Settings
from gateway.store import Json, Store
from gateway.store.trigger_tables import COLUMN_DEFAULTS, TRIGGER_TABLES
from gateway.workspaces import ensure_workspace

from ..support import OWNER, WS


async def put_trigger(
    store: Store, kind: str, name: str, *, script: str = "echo", **columns: Any
) -> TriggerRef:
    """Create a `kind` trigger of the test user at a unique path, as the API writes one."""
    trigger = TriggerRef(kind, WS, f"u/alice/{name}_{uuid.uuid4().hex[:8]}")
    values = {
        **{column: COLUMN_DEFAULTS.get(column) for column in TRIGGER_TABLES[kind].writable_columns},
        "path": trigger.path,
        "script_path": f"f/t/{script}",
        "is_flow": False,
        "workspace_id": WS,
        "edited_by": OWNER.username,
        "email": OWNER.email,
        "permissioned_as": OWNER.permissioned_as,
        **columns,
    }
    values.pop("edited_at")
    async with store.transaction() as tx:
        await ensure_workspace(tx, WS, OWNER)
        await tx.execute(f"upsert_{kind}_trigger", **values)
    return trigger


async def put_resource(store: Store, path: str, resource_type: str, value: Any) -> None:
    """Create or replace a resource of the test workspace."""
    async with store.transaction() as tx:
        await ensure_workspace(tx, WS, OWNER)
        await tx.execute(
            "upsert_resource",
            workspace_id=WS,
            path=path,
            value=Json(value),
            description="",
            resource_type=resource_type,
            created_by=OWNER.username,
        )


class WebhookReceiver:
    """The chat server of the tests: records the JSON bodies posted to it."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self.bodies: list[Any] = []
        self.status = 200

    @property
    def url(self) -> str:
        """Where to post."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/alerts"

    @property
    def texts(self) -> list[str]:
        """The `text` of every body received, in order."""
        return [body["text"] for body in self.bodies]


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """An HTTP server on a free loopback port, in a thread, stopped at the end."""
    receiver: WebhookReceiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            receiver.bodies.append(json.loads(self.rfile.read(length)))
            self.send_response(receiver.status)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = WebhookReceiver(server)
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def scrape(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The samples of a Prometheus text scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    """One sample's value, None when the scrape lacks it."""
    return samples.get((name, frozenset(labels.items())))


def command_env(settings: Settings) -> dict[str, str]:
    """The environment of a `gateway` process on the settings' database and master key."""
    env = {**os.environ, "GATEWAY_DATABASE_URL": settings.database_url}
    if settings.master_key is not None:
        env["GATEWAY_MASTER_KEY"] = settings.master_key.get_secret_value()
    return env


async def run_command(settings: Settings, *args: str, exit_code: int = 0) -> str:
    """Run `gateway <args>` in a process of its own on the settings' database; its output, once
    it exited with `exit_code`."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from gateway.cli.main import main; raise SystemExit(main())",
        *args,
        env=command_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == exit_code, err.decode()
    return out.decode()


async def watched_lines(settings: Settings, count: int, *args: str) -> list[str]:
    """The first `count` lines a `gateway <args>` that runs until stopped prints; it is stopped."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from gateway.cli.main import main; raise SystemExit(main())",
        *args,
        env=command_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(60):
            return [(await process.stdout.readline()).decode() for _ in range(count)]
    finally:
        process.terminate()
        await process.wait()

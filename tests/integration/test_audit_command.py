"""`gateway audit list`: filters, pages and JSON over a real store, on both dialects; and the
same filters on `GET /w/{ws}/audit/list`."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta
from typing import Any

import pytest

from gateway.cli.audit import since_moment
from gateway.cli.main import main
from gateway.http_routes.api import audit
from gateway.store import open_store
from gateway.store.migrations import migrate
from gateway.store.values import utc_now
from gateway.workspaces import Identity, ensure_workspace

ALICE = Identity("alice", "alice@example.com")
BOB = Identity("bob", "bob@example.com")
WS = "audited"


async def _seed(database_url: str) -> None:
    store = await open_store(database_url)
    try:
        await migrate(store)
        async with store.transaction() as tx:
            await ensure_workspace(tx, WS, ALICE)
            await ensure_workspace(tx, "elsewhere", ALICE)
            entries: list[tuple[Identity, str, str, audit.ActionKind, Any]] = [
                (ALICE, "variables.create", "f/ops/pw", "create", None),
                (BOB, "variables.decrypt_secret", "f/ops/pw", "execute", None),
                (ALICE, "kafka_triggers.update", "f/ops/orders", "update", {"mode": "enabled"}),
                (BOB, "resources.delete", "u/bob/db", "delete", None),
            ]
            for actor, operation, resource, action, parameters in entries:
                await audit.record(
                    tx, actor, WS, operation, resource, action=action, parameters=parameters
                )
            await audit.record(
                tx, ALICE, "elsewhere", "variables.create", "f/ops/pw", action="create"
            )
    finally:
        await store.close()


def _listed(capsys: pytest.CaptureFixture[str], database_url: str, *args: str) -> list[Any]:
    code = main(["--database-url", database_url, "audit", "list", "-w", WS, "--json", *args])
    assert code == 0
    entries: list[Any] = json.loads(capsys.readouterr().out)
    return entries


def test_audit_list_filters_and_pages(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PostgreSQL store wants the key of secret variables, even to read the audit log.
    monkeypatch.setenv("GATEWAY_MASTER_KEY", base64.b64encode(bytes(range(32))).decode())
    asyncio.run(_seed(database_url))

    def operations(*args: str) -> list[str]:
        return [e["operation"] for e in _listed(capsys, database_url, *args)]

    assert operations() == [
        "resources.delete",
        "kafka_triggers.update",
        "variables.decrypt_secret",
        "variables.create",
    ]
    assert operations("--user", "bob") == ["resources.delete", "variables.decrypt_secret"]
    assert operations("--operation", "variables") == [
        "variables.decrypt_secret",
        "variables.create",
    ]
    assert operations("--operation", "variables.create") == ["variables.create"]
    assert operations("--resource", "f/ops") == [
        "kafka_triggers.update",
        "variables.decrypt_secret",
        "variables.create",
    ]
    assert operations("--resource", "f/op") == []
    assert operations("--action", "execute") == ["variables.decrypt_secret"]
    assert operations("--since", "1h") == operations()
    assert operations("--since", (utc_now() + timedelta(minutes=5)).isoformat()) == []
    assert operations("--per-page", "3", "--page", "2") == ["variables.create"]
    (update,) = _listed(capsys, database_url, "--operation", "kafka_triggers")
    assert (update["username"], update["email"]) == ("alice", "alice@example.com")
    assert update["parameters"] == {"mode": "enabled"}

    assert main(["--database-url", database_url, "audit", "list", "-w", WS]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "ID",
        "TIMESTAMP",
        "USERNAME",
        "OPERATION",
        "ACTION_KIND",
        "RESOURCE",
    ]
    assert len(table) == 5 and "resources.delete" in table[1]


def test_since_reads_ages_and_iso_times() -> None:
    now = utc_now()
    assert since_moment("30m", now) == now - timedelta(minutes=30)
    assert since_moment("7d", now) == now - timedelta(days=7)
    assert since_moment("2026-01-31T08:00").isoformat() == "2026-01-31T08:00:00+00:00"
    with pytest.raises(Exception, match="neither an ISO time"):
        since_moment("yesterday")

"""`gateway alerts list|ack`, run as a command on both dialects."""

from __future__ import annotations

import json

import pytest

from gateway.settings import Settings
from gateway.store import Store

from ..support import WS, add_scripts
from .support import run_command

pytestmark = pytest.mark.integration


async def raise_alert(store: Store, alert_type: str, message: str) -> int:
    async with store.transaction() as tx:
        await tx.execute(
            "insert_alert",
            alert_type=alert_type,
            message=message,
            workspace_id=WS,
            resource="f/t/flaky",
        )
        rows = await tx.fetch_all(
            "list_workspace_alerts", workspace_id=WS, include_closed=False, limit=1
        )
    return int(rows[0]["id"])


async def test_open_alerts_are_listed_and_an_acknowledged_one_is_closed(
    store: Store, settings: Settings
) -> None:
    await add_scripts(store)
    first = await raise_alert(store, "job_failed", "Job 1 (f/t/flaky) failed after 2 attempt(s)")
    second = await raise_alert(store, "job_failed", "Job 2 (f/t/flaky) failed after 2 attempt(s)")

    listed = json.loads(await run_command(settings, "alerts", "list", "--json", "-w", WS))
    assert [(a["id"], a["state"]) for a in listed] == [(second, "open"), (first, "open")]
    table = await run_command(settings, "alerts", "list", "-w", WS)
    assert table.splitlines()[0].split() == [
        "ID",
        "ALERT_TYPE",
        "STATE",
        "CREATED_AT",
        "RESOURCE",
        "MESSAGE",
    ]

    acked = await run_command(settings, "alerts", "ack", str(first), "-w", WS)
    assert acked.strip() == f"{first}: acknowledged"
    again = await run_command(settings, "alerts", "ack", str(first), "-w", WS, exit_code=1)
    assert "no open alert" in again

    still_open = json.loads(await run_command(settings, "alerts", "list", "--json", "-w", WS))
    assert [a["id"] for a in still_open] == [second]
    every = json.loads(await run_command(settings, "alerts", "list", "--all", "--json", "-w", WS))
    assert [(a["id"], a["state"]) for a in every] == [(second, "open"), (first, "acknowledged")]

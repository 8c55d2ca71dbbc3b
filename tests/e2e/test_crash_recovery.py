"""kill -9 of a gateway process in the middle of a stream, then a restart: every message of an
at-least-once source (SQS, PostgreSQL CDC) becomes exactly one job."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from subprocess import Popen
from typing import Any

from gateway.jobs.read import JobFilter, list_jobs
from gateway.store import Json, Store, open_store
from gateway.store.migrations import migrate
from gateway.store.trigger_tables import COLUMN_DEFAULTS, TRIGGER_TABLES

from ..integration.listeners import cdc_cluster
from ..integration.listeners.test_sqs_listener import RESOURCE as SQS_RESOURCE
from ..integration.listeners.test_sqs_listener import new_queue, send, sqs
from ..integration.support import OWNER, WS, add_scripts, eventually
from .cli import gateway_env, start_gateway

TRIGGER = "u/alice/stream"


async def save_trigger(store: Store, kind: str, **columns: Any) -> None:
    spec = TRIGGER_TABLES[kind]
    values = {c: COLUMN_DEFAULTS.get(c) for c in spec.writable_columns if c != "edited_at"}
    values.update(
        path=TRIGGER, script_path="f/t/noop", is_flow=False, workspace_id=WS,
        edited_by=OWNER.username, email=OWNER.email, permissioned_as=OWNER.permissioned_as,
    )  # fmt: skip
    values.update(columns)
    async with store.transaction() as tx:
        await tx.execute(f"upsert_{kind}_trigger", **values)


async def save_resource(store: Store, path: str, value: Any, resource_type: str) -> None:
    async with store.transaction() as tx:
        await tx.execute(
            "upsert_resource", workspace_id=WS, path=path, value=Json(value), description="",
            resource_type=resource_type, created_by="alice",
        )  # fmt: skip


async def jobs_of_trigger(store: Store) -> list[dict[str, Any]]:
    return await list_jobs(store, WS, JobFilter(trigger=TRIGGER, per_page=1000))


@asynccontextmanager
async def gateway_process(url: str, log: Path) -> AsyncIterator[Popen[bytes]]:
    env = gateway_env(
        url,
        GATEWAY_MIGRATE_ON_START="false",
        GATEWAY_HTTP_PORT="0",
        GATEWAY_EXECUTOR_SLOTS="0",
        GATEWAY_LEASE_CLAIM_INTERVAL_S="1",
        GATEWAY_LEASE_PING_INTERVAL_S="1",
        GATEWAY_LEASE_STALE_AFTER_S="3",
        GATEWAY_LISTENER_BACKOFF_CAP_S="2",
    )
    process = start_gateway("serve", env=env, log=log)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


async def crash_and_recover(
    postgres_url: str,
    tmp_path: Path,
    store: Store,
    publish: Callable[[int, int], Awaitable[None]],
    total: int,
) -> list[dict[str, Any]]:
    """Publish half, kill -9 the gateway once some became jobs, publish the rest, restart."""
    async with gateway_process(postgres_url, tmp_path / "first.log") as first:
        await publish(0, total // 2)

        async def some_jobs() -> bool:
            return len(await jobs_of_trigger(store)) > 0

        await eventually(some_jobs, timeout_s=90)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    await publish(total // 2, total)
    async with gateway_process(postgres_url, tmp_path / "second.log"):

        async def all_jobs() -> bool:
            return len(await jobs_of_trigger(store)) >= total

        await eventually(all_jobs, timeout_s=120, every_s=0.5)
    return await jobs_of_trigger(store)


async def test_sqs_messages_survive_a_killed_gateway(postgres_url: str, tmp_path: Path) -> None:
    store = await open_store(postgres_url)
    try:
        await migrate(store)
        await add_scripts(store, noop="def main(msg: str):\n    return None\n")
        await save_resource(store, "u/alice/aws", SQS_RESOURCE, "aws")
        async with sqs() as client:
            queue = await new_queue(client)
            await save_trigger(
                store, "sqs", queue_url=queue, aws_resource_path="u/alice/aws",
                aws_auth_resource_type="credentials",
            )  # fmt: skip

            async def publish(start: int, stop: int) -> None:
                await send(client, queue, *(f"message-{i}" for i in range(start, stop)))

            jobs = await crash_and_recover(postgres_url, tmp_path, store, publish, total=40)
    finally:
        await store.close()
    bodies = sorted(job["args"]["msg"] for job in jobs)
    assert bodies == sorted(f"message-{i}" for i in range(40))


async def test_cdc_changes_survive_a_killed_gateway(postgres_url: str, tmp_path: Path) -> None:
    store = await open_store(postgres_url)
    try:
        await migrate(store)
        await add_scripts(store, noop="def main(row: dict):\n    return None\n")
        await save_resource(
            store, cdc_cluster.RESOURCE_PATH, cdc_cluster.cdc_resource(), "postgresql"
        )
        async with cdc_cluster.cdc_source() as source:
            await save_trigger(store, "postgres", **source.trigger_columns())

            async def publish(start: int, stop: int) -> None:
                for i in range(start, stop):
                    await source.run(f"INSERT INTO {{plain}} (id, note) VALUES ({i}, 'row {i}')")

            jobs = await crash_and_recover(postgres_url, tmp_path, store, publish, total=30)
    finally:
        await store.close()
    ids = sorted(job["args"]["row"]["id"] for job in jobs)
    assert ids == list(range(30))

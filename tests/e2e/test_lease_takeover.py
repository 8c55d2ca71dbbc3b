"""Two gateway instances on one PostgreSQL, sharing triggers by lease, over a real Kafka broker:
each trigger is held by exactly one instance, a killed holder's triggers move to the other, and
across the takeover every message becomes exactly one job; `setmode disabled` stops a listener.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from subprocess import Popen

import httpx
import pytest

from gateway.http_routes.api.tokens import issue_token
from gateway.jobs.read import JobFilter, list_jobs
from gateway.store import Json, Store, open_store
from gateway.store.migrations import migrate
from gateway.store.trigger_tables import COLUMN_DEFAULTS, TRIGGER_TABLES

from ..integration.listeners.kafka_broker import Broker, Message, reachable_broker
from ..integration.support import OWNER, WS, add_scripts, eventually
from .cli import gateway_env, start_gateway

TRIGGERS = ("u/alice/orders_a", "u/alice/orders_b", "u/alice/orders_c")


async def save_kafka_trigger(store: Store, path: str, topic: str, group: str) -> None:
    spec = TRIGGER_TABLES["kafka"]
    values = {c: COLUMN_DEFAULTS.get(c) for c in spec.writable_columns if c != "edited_at"}
    values.update(
        path=path, script_path="f/t/noop", is_flow=False, workspace_id=WS,
        edited_by=OWNER.username, email=OWNER.email, permissioned_as=OWNER.permissioned_as,
        kafka_resource_path="u/alice/kafka", topics=[topic], group_id=group,
        auto_offset_reset="earliest",
    )  # fmt: skip
    async with store.transaction() as tx:
        await tx.execute("upsert_kafka_trigger", **values)


async def holders(store: Store) -> dict[str, str | None]:
    found = {}
    async with store.transaction() as tx:
        for path in TRIGGERS:
            row = await tx.fetch_one("get_kafka_trigger", workspace_id=WS, path=path)
            assert row is not None
            found[path] = row["server_id"] if row["error"] is None else None
    return found


async def job_counts(store: Store) -> dict[str, int]:
    counts = {}
    for path in TRIGGERS:
        jobs = await list_jobs(store, WS, JobFilter(trigger=path, per_page=1000))
        counts[path] = len(jobs)
    return counts


@pytest.fixture
async def cluster(postgres_url: str, tmp_path: Path) -> AsyncIterator[tuple[Store, Broker, str]]:
    broker = await reachable_broker()
    store = await open_store(postgres_url)
    await migrate(store)
    await add_scripts(store, noop="def main(payload: str):\n    return None\n")
    async with store.transaction() as tx:
        await tx.execute(
            "upsert_resource", workspace_id=WS, path="u/alice/kafka", value=Json(broker.resource),
            description="", resource_type="kafka", created_by="alice",
        )  # fmt: skip
    yield store, broker, postgres_url
    await store.close()


async def test_triggers_move_to_the_survivor_with_nothing_lost_or_doubled(
    cluster: tuple[Store, Broker, str], tmp_path: Path
) -> None:
    store, broker, url = cluster
    topics = {path: await broker.create_topic(partitions=2) for path in TRIGGERS}
    for path, topic in topics.items():
        await save_kafka_trigger(store, path, topic, f"group-{topic}")
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
    processes: dict[str, Popen[bytes]] = {}
    async with AsyncExitStack() as stack:
        stack.callback(_stop_all, processes)
        for name in ("first", "second"):
            processes[name] = start_gateway(
                "serve",
                env={**env, "GATEWAY_INSTANCE_NAME": name},
                log=tmp_path / f"{name}.log",
            )

        async def all_held() -> dict[str, str | None] | None:
            found = await holders(store)
            return found if all(found.values()) else None

        held = await eventually(all_held, timeout_s=90)
        assert set(held.values()) <= {"first", "second"}

        async def publish(round_: int) -> None:
            for topic in topics.values():
                await broker.produce(topic, *(Message(f"{round_}-{i}".encode()) for i in range(10)))

        await publish(1)

        async def counted(expected: int) -> bool:
            return all(n == expected for n in (await job_counts(store)).values())

        await eventually(lambda: counted(10), timeout_s=60)

        # Before the kill, each trigger was claimed by exactly one of the two instances.
        logs = "".join((tmp_path / f"{name}.log").read_text() for name in processes)
        for path in TRIGGERS:
            assert logs.count(f" claimed kafka trigger {WS}/{path}\n") == 1, path

        victim = held[TRIGGERS[0]]
        assert victim is not None
        survivor = "second" if victim == "first" else "first"
        os.kill(processes[victim].pid, signal.SIGKILL)
        processes[victim].wait(timeout=10)
        killed_at = time.monotonic()
        await publish(2)

        async def taken_over() -> bool:
            return all(holder == survivor for holder in (await holders(store)).values())

        await eventually(taken_over, timeout_s=120, every_s=0.5)
        takeover_s = time.monotonic() - killed_at
        await eventually(lambda: counted(20), timeout_s=120)
        print(f"takeover after kill -9: {takeover_s:.1f}s")

        # Exactly one job per message: 20 per trigger, each event key once.
        for path in TRIGGERS:
            jobs = await list_jobs(store, WS, JobFilter(trigger=path, per_page=1000))
            payloads = sorted(job["args"]["payload"] for job in jobs)
            assert len(payloads) == len(set(payloads)) == 20

        # Disabling a trigger stops its listener: later messages create nothing.
        async with store.transaction() as tx:
            token = await issue_token(tx, OWNER, WS, label="test")
        port = _port_of(tmp_path / f"{survivor}.log")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/api") as http:
            response = await http.post(
                f"/w/{WS}/kafka_triggers/setmode/{TRIGGERS[1]}",
                json={"mode": "disabled"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200, response.text

        async def stopped() -> bool:
            log = (tmp_path / f"{survivor}.log").read_text()
            return f"{TRIGGERS[1]} changed, disabled, deleted or taken, stopping" in log

        await eventually(stopped, timeout_s=30)
        await broker.produce(topics[TRIGGERS[1]], Message(b"after-disable"))
        await broker.produce(topics[TRIGGERS[2]], Message(b"still-enabled"))
        await eventually(
            lambda: _count_is(store, TRIGGERS[2], 21), timeout_s=60
        )  # the enabled trigger still consumes
        assert (await job_counts(store))[TRIGGERS[1]] == 20


async def _count_is(store: Store, path: str, expected: int) -> bool:
    return (await job_counts(store))[path] == expected


def _port_of(log: Path) -> int:
    for line in log.read_text().splitlines():
        if "listening on http://" in line:
            return int(line.rsplit(":", 1)[1])
    raise AssertionError(f"no listening line in {log}")


def _stop_all(processes: dict[str, Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    for process in processes.values():
        try:
            process.wait(timeout=30)
        except Exception:
            process.kill()

"""Jobs parked by a suspended trigger: resumed (released or re-pushed) or canceled."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from typing import Any
from uuid import UUID

import psycopg

from gateway.jobs.model import NewJob
from gateway.jobs.read import JobFilter, get_job, list_jobs
from gateway.jobs.retry import RetryPolicy
from gateway.jobs.suspended import cancel_parked_jobs, resume_parked_jobs
from gateway.store import Store
from gateway.store.trigger_tables import COLUMN_DEFAULTS, TRIGGER_TABLES

from .support import OWNER, WS, add_scripts, job_of, submit

TRIGGER = "u/alice/orders"


async def save_trigger(store: Store, script: str, **columns: object) -> None:
    spec = TRIGGER_TABLES["nats"]
    values = {c: COLUMN_DEFAULTS.get(c) for c in spec.writable_columns if c != "edited_at"}
    values.update(
        path=TRIGGER, script_path=f"f/t/{script}", is_flow=False, workspace_id=WS,
        edited_by=OWNER.username, email=OWNER.email, permissioned_as=OWNER.permissioned_as,
        nats_resource_path="u/alice/nats", subjects=["orders"], use_jetstream=False,
        mode="suspended",
    )  # fmt: skip
    values.update(columns)
    async with store.transaction() as tx:
        await tx.execute("upsert_nats_trigger", **values)


def queue_rows(database_url: str, job_id: UUID) -> int:
    """How many queue rows `job_id` has, read past the store."""
    if database_url.startswith("sqlite:"):
        path = database_url.removeprefix("sqlite:///")
        with closing(sqlite3.connect(path)) as lite:
            query = "SELECT count(*) FROM v2_job_queue WHERE id = ?"
            (count,) = lite.execute(query, (str(job_id),)).fetchone()
            return int(count)
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM v2_job_queue WHERE id = %s", (job_id,)).fetchone()
        assert row is not None
        return int(row[0])


def parked(script: str, **fields: Any) -> NewJob:
    return job_of(script, trigger_kind="nats", trigger=TRIGGER, suspended=True, **fields)


async def test_suspended_jobs_are_parked_not_run(store: Store) -> None:
    await add_scripts(store, a="def main(x: int):\n    return x\n")
    await save_trigger(store, "a")
    (job_id,) = await submit(store, parked("a", args={"x": 1}))
    job = await get_job(store, WS, job_id)
    assert job["job_kind"] == "unassigned_script"
    async with store.transaction() as tx:
        assert await tx.fetch_all("claim_jobs", worker="w", limit=10) == []


async def test_resume_releases_jobs_created_after_the_last_edit(store: Store) -> None:
    await add_scripts(store, a="def main(x: int):\n    return x\n")
    await save_trigger(store, "a")
    await asyncio.sleep(0.01)
    ids = await submit(store, parked("a", args={"x": 1}), parked("a", args={"x": 2}))
    async with store.transaction() as tx:
        assert await resume_parked_jobs(tx, WS, "nats", TRIGGER, [ids[0]]) == 1
    assert (await get_job(store, WS, ids[0]))["job_kind"] == "script"
    assert (await get_job(store, WS, ids[1]))["job_kind"] == "unassigned_script"
    async with store.transaction() as tx:
        claimed = await tx.fetch_all("claim_jobs", worker="w", limit=10)
    assert [row["id"] for row in claimed] == [ids[0]]


async def test_resume_repushes_jobs_older_than_an_edit_to_the_new_target(
    store: Store, database_url: str
) -> None:
    await add_scripts(
        store, a="def main(x: int):\n    return x\n", b="def main(x: int):\n    return -x\n"
    )
    await save_trigger(store, "a")
    (old,) = await submit(store, parked("a", args={"x": 5}, dedup_key="nats:evt-1"))
    await asyncio.sleep(0.01)
    retry = {"constant": {"attempts": 1, "seconds": 1}}
    await save_trigger(store, "b", retry=retry)
    async with store.transaction() as tx:
        assert await resume_parked_jobs(tx, WS, "nats", TRIGGER) == 1
    (job,) = await list_jobs(store, WS, JobFilter(trigger=TRIGGER))
    assert job["id"] != str(old)
    assert queue_rows(database_url, old) == 0  # the replaced job left the queue too
    assert job["script_path"] == "f/t/b"
    assert job["job_kind"] == "singlestepflow"  # the new retry policy applies
    assert job["args"] == {"x": 5}
    policy = RetryPolicy.parse(retry)
    assert policy is not None
    assert job["raw_flow"]["modules"][0]["retry"] == policy.to_json()
    # The event's dedup key now leads to the job that replaced the parked one.
    again = await submit(store, parked("a", args={"x": 5}, dedup_key="nats:evt-1"))
    assert str(again[0]) == job["id"]


async def test_resume_of_a_wrapped_job_starts_its_first_attempt(store: Store) -> None:
    await add_scripts(store, a="def main(x: int):\n    return x\n")
    await save_trigger(store, "a")
    await asyncio.sleep(0.01)
    policy = RetryPolicy.parse({"constant": {"attempts": 2, "seconds": 1}})
    (wrapper,) = await submit(store, parked("a", args={"x": 3}, retry=policy))
    assert (await get_job(store, WS, wrapper))["job_kind"] == "unassigned_singlestepflow"
    async with store.transaction() as tx:
        assert await resume_parked_jobs(tx, WS, "nats", TRIGGER) == 1
    job = await get_job(store, WS, wrapper)
    assert job["job_kind"] == "singlestepflow" and job["running"] is True
    (attempt,) = await list_jobs(store, WS, JobFilter(parent_job=wrapper))
    assert attempt["args"] == {"x": 3} and attempt["flow_step_id"] == "a"


async def test_cancel_parked_jobs(store: Store) -> None:
    await add_scripts(store, a="def main(x: int):\n    return x\n")
    await save_trigger(store, "a")
    ids = await submit(store, parked("a", args={"x": 1}), parked("a", args={"x": 2}))
    async with store.transaction() as tx:
        assert await cancel_parked_jobs(tx, WS, "nats", TRIGGER, canceled_by="alice") == 2
    for job_id in ids:
        job = await get_job(store, WS, job_id)
        assert job["status"] == "canceled" and job["canceled_by"] == "alice"

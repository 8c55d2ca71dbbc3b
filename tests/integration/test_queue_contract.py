"""The queue's contract, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

from gateway.jobs.cancel import cancel_job
from gateway.jobs.read import JobFilter, get_job, list_jobs
from gateway.store import Store

from .support import WS, add_scripts, job_of, submit


async def test_event_seen_before_returns_its_first_job(store: Store) -> None:
    await add_scripts(store, hello="def main():\n    return 1\n")
    first = await submit(store, job_of("hello", dedup_key="kafka:orders/0/42"))
    again = await submit(store, job_of("hello", dedup_key="kafka:orders/0/42"), job_of("hello"))
    assert again[0] == first[0]
    assert again[1] != first[0]
    found = await list_jobs(store, WS, JobFilter(per_page=100))
    assert len(found) == 2


async def test_claim_takes_highest_priority_then_oldest(store: Store) -> None:
    await add_scripts(store, hello="def main():\n    return 1\n")
    low, high, later = await submit(
        store,
        job_of("hello", priority=1),
        job_of("hello", priority=9),
        job_of("hello", delay_s=600),
    )
    async with store.transaction() as tx:
        first = await tx.fetch_all("claim_jobs", worker="w1", limit=1)
        second = await tx.fetch_all("claim_jobs", worker="w1", limit=5)
    assert [row["id"] for row in first] == [high]
    assert [row["id"] for row in second] == [low]  # `later` is not due yet
    assert (await get_job(store, WS, later))["running"] is False


async def test_cancel_a_queued_job_completes_it_as_canceled(store: Store) -> None:
    await add_scripts(store, hello="def main():\n    return 1\n")
    (job_id,) = await submit(store, job_of("hello"))
    async with store.transaction() as tx:
        assert await cancel_job(tx, WS, job_id, "bob", "not needed")
    job = await get_job(store, WS, job_id)
    assert job["type"] == "CompletedJob"
    assert job["status"] == "canceled"
    assert job["canceled_by"] == "bob"
    assert job["canceled_reason"] == "not needed"


async def test_list_filters_by_trigger_kind_and_script(store: Store) -> None:
    await add_scripts(store, a="def main():\n    return 1\n", b="def main():\n    return 2\n")
    await submit(
        store,
        job_of("a", trigger_kind="kafka", trigger="u/alice/orders"),
        job_of("b", trigger_kind="http", trigger="u/alice/route"),
    )
    kafka = await list_jobs(store, WS, JobFilter(trigger_kind="kafka"))
    assert [(j["script_path"], j["trigger"]) for j in kafka] == [("f/t/a", "u/alice/orders")]
    by_path = await list_jobs(store, WS, JobFilter(script_path_exact="f/t/b"))
    assert [j["trigger_kind"] for j in by_path] == ["http"]
    assert await list_jobs(store, WS, JobFilter(state="completed")) == []

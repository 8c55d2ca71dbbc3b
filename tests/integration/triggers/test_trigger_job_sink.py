"""A leased trigger's batch becomes jobs in one fenced transaction, bad events the quarantine."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from gateway.jobs.read import JobFilter, get_job, list_jobs
from gateway.listeners.lease import LeaseLost, TriggerRef
from gateway.store import Store
from gateway.triggers.event import Event
from gateway.triggers.pipeline import TriggerJobSink
from gateway.triggers.quarantine import list_quarantined_events

from ..support import OWNER, WS, add_scripts
from .support import FEED_URL, STALE_S, add_trigger, age_leases, claim, frame

ECHO = "def main(msg: str):\n    return {'echo': msg}\n"


def record(value: bytes, offset: int) -> Event:
    """A Kafka record of topic `orders`."""
    info = {"brokers": ["127.0.0.1:9092"], "topic": "orders", "group_id": "g", "offset": offset}
    return Event("kafka", value, info, f"orders/0/{offset}", value)


async def jobs_of(store: Store, trigger: TriggerRef) -> list[dict[str, Any]]:
    """The trigger's top-level jobs."""
    return await list_jobs(store, WS, JobFilter(trigger=trigger.path, per_page=100))


async def test_a_batch_becomes_jobs_with_the_trigger_metadata(store: Store) -> None:
    await add_scripts(store, echo=ECHO)
    trigger = await add_trigger(store, "feed")
    lease = await claim(store, trigger)

    ids = await TriggerJobSink(store).submit(lease, [frame("a", "m-1"), frame("b", "m-2")])

    jobs = [await get_job(store, WS, job_id) for job_id in ids]
    assert [job["args"] for job in jobs] == [{"msg": "a"}, {"msg": "b"}]
    for job in jobs:
        assert job["job_kind"] == "script"
        assert job["script_path"] == "f/t/echo"
        assert (job["trigger"], job["trigger_kind"]) == (trigger.path, "websocket")
        assert job["created_by"] == f"ws-{trigger.path}"
        assert (job["permissioned_as"], job["email"]) == (OWNER.permissioned_as, OWNER.email)


async def test_kafka_args_follow_the_script_signature(store: Store) -> None:
    await add_scripts(
        store,
        raw="def main(payload: str):\n    return payload\n",
        text="def main(msg: str):\n    return msg\n",
    )
    by_payload = await add_trigger(store, "orders", kind="kafka", script="raw")
    [raw_job] = await TriggerJobSink(store).submit(
        await claim(store, by_payload), [record(b'{"a":1}', 1)]
    )
    by_msg = await add_trigger(store, "orders", kind="kafka", script="text")
    [text_job] = await TriggerJobSink(store).submit(
        await claim(store, by_msg), [record(b'{"a":1}', 1)]
    )

    assert (await get_job(store, WS, raw_job))["args"] == {
        "payload": base64.b64encode(b'{"a":1}').decode()
    }
    text = await get_job(store, WS, text_job)
    assert text["args"] == {"msg": '{"a":1}'}
    assert text["created_by"] == f"kafka-{by_msg.path}"


async def test_a_redelivered_event_maps_to_the_job_it_first_became(store: Store) -> None:
    await add_scripts(store, echo=ECHO)
    trigger = await add_trigger(store, "feed")
    lease = await claim(store, trigger)
    sink = TriggerJobSink(store)

    first = await sink.submit(lease, [frame("a", "m-1")])
    again = await sink.submit(lease, [frame("a", "m-1"), frame("b", "m-2")])

    assert again[0] == first[0]
    assert len(await jobs_of(store, trigger)) == 2


async def test_a_redelivered_batch_maps_each_event_to_the_job_it_first_became(
    store: Store,
) -> None:
    await add_scripts(store, echo=ECHO)
    trigger = await add_trigger(store, "orders", kind="kafka")
    lease = await claim(store, trigger)
    sink = TriggerJobSink(store)
    records = [record(b'{"n": %d}' % offset, offset) for offset in range(20)]

    first = await sink.submit(lease, records[:10])
    # A rebalance delivers the batch again, with the records that followed it.
    again = await sink.submit(lease, records)

    assert again[:10] == first
    assert len(set(again)) == 20
    jobs = await jobs_of(store, trigger)
    assert sorted(job["args"]["msg"] for job in jobs) == sorted(r.raw.decode() for r in records)


async def test_a_batch_after_a_new_deployment_runs_the_new_version(store: Store) -> None:
    await add_scripts(store, echo=ECHO)
    trigger = await add_trigger(store, "orders", kind="kafka", script="echo")
    lease = await claim(store, trigger)
    sink = TriggerJobSink(store)
    [before] = await sink.submit(lease, [record(b"a", 1)])

    # Args were built for `main(msg)` ahead of this batch's transaction; it finds `main(payload)`.
    await add_scripts(store, echo="def main(payload: str):\n    return payload\n")
    [after] = await sink.submit(lease, [record(b"b", 2)])

    assert (await get_job(store, WS, before))["args"] == {"msg": "a"}
    assert (await get_job(store, WS, after))["args"] == {"payload": base64.b64encode(b"b").decode()}


async def test_an_event_the_filters_reject_creates_nothing(store: Store) -> None:
    await add_scripts(store, echo="def main(payload: str):\n    return payload\n")
    trigger = await add_trigger(
        store, "orders", kind="kafka", filters=[{"key": "type", "value": "order"}]
    )
    lease = await claim(store, trigger)

    ids = await TriggerJobSink(store).submit(
        lease,
        [record(b'{"type": "refund"}', 1), record(b'{"type": "order"}', 2), record(b"not json", 3)],
    )

    [job] = await jobs_of(store, trigger)
    assert [str(job_id) for job_id in ids] == [job["id"]]
    assert job["args"] == {"payload": base64.b64encode(b'{"type": "order"}').decode()}
    assert await list_quarantined_events(store, WS) == []


async def test_a_bad_event_is_quarantined_and_the_rest_of_the_batch_become_jobs(
    store: Store,
) -> None:
    await add_scripts(store, echo=ECHO)
    trigger = await add_trigger(store, "feed")
    lease = await claim(store, trigger)
    # A WebSocket frame is text; bytes cannot become `msg`.
    bad = Event("websocket", b"\xff\xfe", {"url": FEED_URL}, "m-2", b"\xff\xfe")

    ids = await TriggerJobSink(store).submit(lease, [frame("a", "m-1"), bad, frame("c", "m-3")])

    assert [(await get_job(store, WS, job_id))["args"] for job_id in ids] == [
        {"msg": "a"},
        {"msg": "c"},
    ]
    assert len(await jobs_of(store, trigger)) == 2
    [kept] = await list_quarantined_events(store, WS, trigger_path=trigger.path)
    assert (kept.trigger_kind, kept.dedup_key, kept.raw) == ("websocket", "m-2", b"\xff\xfe")
    assert kept.info == {"url": FEED_URL}
    assert "websocket payload must be str" in kept.error
    assert kept.redriven_at is None


async def test_a_batch_for_a_missing_script_is_quarantined(store: Store) -> None:
    await add_scripts(store)
    trigger = await add_trigger(store, "feed", script="nowhere")
    lease = await claim(store, trigger)

    assert await TriggerJobSink(store).submit(lease, [frame("a", "m-1"), frame("b", None)]) == []

    kept = await list_quarantined_events(store, WS, trigger_kind="websocket")
    assert [entry.raw for entry in kept] == [b"b", b"a"]
    assert all("f/t/nowhere" in entry.error for entry in kept)


async def test_a_missing_flow_target_is_quarantined_with_its_reason(store: Store) -> None:
    await add_scripts(store, echo=ECHO)
    trigger = await add_trigger(store, "feed", is_flow=True)
    lease = await claim(store, trigger)

    assert await TriggerJobSink(store).submit(lease, [frame("a", "m-1")]) == []

    [kept] = await list_quarantined_events(store, WS)
    assert kept.error.startswith("flow not found at path 'f/t/echo'")


async def test_a_redelivered_bad_event_is_kept_once(store: Store) -> None:
    await add_scripts(store, echo=ECHO)
    trigger = await add_trigger(store, "feed", is_flow=True)
    lease = await claim(store, trigger)
    sink = TriggerJobSink(store)

    await sink.submit(lease, [frame("a", "m-1")])
    await sink.submit(lease, [frame("a", "m-1")])

    assert len(await list_quarantined_events(store, WS)) == 1


async def test_suspended_mode_parks_the_jobs(store: Store) -> None:
    await add_scripts(store, echo=ECHO)
    trigger = await add_trigger(store, "feed", mode="suspended")
    lease = await claim(store, trigger)

    [job_id] = await TriggerJobSink(store).submit(lease, [frame("a", "m-1")])

    job = await get_job(store, WS, job_id)
    assert job["job_kind"] == "unassigned_script"
    assert job["running"] is False


async def test_retry_and_error_handler_come_from_the_trigger(store: Store) -> None:
    await add_scripts(store, echo=ECHO, on_error="def main(error: dict):\n    return error\n")
    trigger = await add_trigger(
        store,
        "feed",
        retry={"constant": {"attempts": 2, "seconds": 1}},
        error_handler_path="script/f/t/on_error",
        error_handler_args={"channel": "#ops"},
    )
    lease = await claim(store, trigger)

    [job_id] = await TriggerJobSink(store).submit(lease, [frame("a", "m-1")])

    job = await get_job(store, WS, job_id)
    assert job["job_kind"] == "singlestepflow"
    [module] = job["raw_flow"]["modules"]
    assert module["retry"]["constant"] == {"attempts": 2, "seconds": 1}
    failure = job["raw_flow"]["failure_module"]["value"]
    assert (failure["path"], failure["extra_args"]) == ("f/t/on_error", {"channel": "#ops"})


async def test_a_script_with_a_preprocessor_gets_the_event_shape(store: Store) -> None:
    await add_scripts(
        store,
        pre="def preprocessor(event: dict):\n    return {'msg': event['msg']}\n\n" + ECHO,
    )
    trigger = await add_trigger(store, "feed", script="pre")
    lease = await claim(store, trigger)

    [job_id] = await TriggerJobSink(store).submit(lease, [frame("a", "m-1")])

    job = await get_job(store, WS, job_id)
    assert job["args"] == {"event": {"msg": "a", "kind": "websocket", "url": FEED_URL}}
    assert job["preprocessed"] is False


async def test_the_fence_refuses_a_submit_after_a_takeover_and_writes_nothing(
    store: Store,
) -> None:
    await add_scripts(store, echo=ECHO)
    trigger = await add_trigger(store, "feed")
    stale = await claim(store, trigger, "gw-a")
    await age_leases(store, "websocket", STALE_S + 1)
    await claim(store, trigger, "gw-b")
    bad = Event("websocket", b"\xff", {}, "m-2", b"\xff")

    with pytest.raises(LeaseLost, match="no longer held by gw-a"):
        await TriggerJobSink(store).submit(stale, [frame("a", "m-1"), bad])

    assert await jobs_of(store, trigger) == []
    assert await list_quarantined_events(store, WS) == []

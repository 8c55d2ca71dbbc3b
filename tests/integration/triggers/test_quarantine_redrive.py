"""The quarantine keeps what could not become a job, lists it, and redrives it."""

from __future__ import annotations

import pytest

from gateway.errors import NotFound
from gateway.jobs.read import JobFilter, get_job, list_jobs
from gateway.listeners.lease import TriggerRef
from gateway.store import Store
from gateway.triggers.event import Event
from gateway.triggers.pipeline import TriggerJobSink
from gateway.triggers.quarantine import (
    get_quarantined_event,
    list_quarantined_events,
    quarantine_event,
    redrive,
)

from ..support import WS, add_scripts
from .support import add_trigger, claim, delete_trigger, frame

ECHO = "def main(msg: str):\n    return {'echo': msg}\n"


async def quarantined_batch(store: Store, *events: Event) -> TriggerRef:
    """A trigger on a script not deployed yet, whose batch of `events` went to the quarantine."""
    await add_scripts(store)
    trigger = await add_trigger(store, "feed", script="echo")
    assert await TriggerJobSink(store).submit(await claim(store, trigger), events) == []
    return trigger


async def test_a_redrive_makes_the_job_once_the_cause_is_fixed(store: Store) -> None:
    trigger = await quarantined_batch(store, frame("hello", "m-1"))
    [kept] = await list_quarantined_events(store, WS)

    still = await redrive(store, WS, kept.id)
    assert still.job_id is None
    assert still.error is not None and "f/t/echo" in still.error

    await add_scripts(store, echo=ECHO)
    done = await redrive(store, WS, kept.id)

    assert done.error is None and done.job_id is not None
    job = await get_job(store, WS, done.job_id)
    assert job["args"] == {"msg": "hello"}
    assert (job["trigger"], job["created_by"]) == (trigger.path, f"ws-{trigger.path}")
    entry = await get_quarantined_event(store, WS, kept.id)
    assert entry.redriven_job_id == done.job_id
    assert entry.redriven_at is not None
    assert await redrive(store, WS, kept.id) == done
    assert len(await list_jobs(store, WS, JobFilter(trigger=trigger.path))) == 1


async def test_a_redrive_that_fails_again_keeps_the_row_with_the_new_reason(
    store: Store,
) -> None:
    trigger = await quarantined_batch(store, frame("hello", "m-1"))
    [kept] = await list_quarantined_events(store, WS)
    await delete_trigger(store, trigger)

    outcome = await redrive(store, WS, kept.id)

    assert outcome.job_id is None
    assert outcome.error == f"websocket trigger {trigger} no longer exists"
    entry = await get_quarantined_event(store, WS, kept.id)
    assert (entry.error, entry.redriven_at) == (outcome.error, None)


async def test_an_event_whose_payload_was_not_kept_is_not_redriven(store: Store) -> None:
    await add_scripts(store)
    pubsub = TriggerRef("gcp", WS, "u/alice/pubsub")
    event = Event("gcp", "aGk=", {"message_id": "1"}, "1", b"hi")
    async with store.transaction() as tx:
        kept_id = await quarantine_event(tx, pubsub, event, "the script failed to load")
    assert kept_id is not None

    outcome = await redrive(store, WS, kept_id)

    assert outcome.job_id is None
    assert outcome.error is not None and "a gcp event cannot be rebuilt" in outcome.error
    assert (await get_quarantined_event(store, WS, kept_id)).redriven_at is None


async def test_the_list_filters_by_kind_and_path_newest_first_one_page_at_a_time(
    store: Store,
) -> None:
    trigger = await quarantined_batch(store, frame("a", "m-1"), frame("b", "m-2"))
    other = TriggerRef("kafka", WS, "u/alice/orders")
    async with store.transaction() as tx:
        await quarantine_event(tx, other, Event("kafka", b"x", {}, "o/0/1", b"x"), "bad")

    everything = await list_quarantined_events(store, WS)
    assert [entry.raw for entry in everything] == [b"x", b"b", b"a"]
    feed = await list_quarantined_events(store, WS, trigger_kind="websocket")
    assert [entry.trigger_path for entry in feed] == [trigger.path, trigger.path]
    assert [
        entry.raw for entry in await list_quarantined_events(store, WS, trigger_path=other.path)
    ] == [b"x"]
    second_page = await list_quarantined_events(store, WS, page=2, per_page=2)
    assert [entry.raw for entry in second_page] == [b"a"]
    assert await list_quarantined_events(store, "elsewhere") == []


async def test_an_unknown_quarantined_event_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await get_quarantined_event(store, WS, 404)
    with pytest.raises(NotFound):
        await redrive(store, WS, 404)

"""An event holding text PostgreSQL cannot store (a NUL, an unpaired surrogate) is quarantined
on both dialects, and the rest of its batch becomes jobs: one such message never stops a
listener by failing every transaction it is in."""

from __future__ import annotations

import pytest

from gateway.jobs.read import get_job
from gateway.store import Store
from gateway.triggers.event import Event
from gateway.triggers.pipeline import TriggerJobSink
from gateway.triggers.quarantine import list_quarantined_events

from ..support import WS, add_scripts
from .support import add_trigger, claim, frame

ECHO = "def main(msg: str):\n    return {'echo': msg}\n"


@pytest.mark.parametrize("text", ["a\x00b", "a\ud800b"], ids=["nul", "surrogate"])
async def test_an_unstorable_event_is_quarantined_and_the_rest_become_jobs(
    store: Store, text: str
) -> None:
    await add_scripts(store, echo=ECHO)
    trigger = await add_trigger(store, "feed")
    lease = await claim(store, trigger)
    bad = Event("websocket", text, {"url": text}, "m-2", text.encode("utf-8", "surrogatepass"))

    ids = await TriggerJobSink(store).submit(lease, [frame("fine", "m-1"), bad])

    assert [(await get_job(store, WS, job_id))["args"] for job_id in ids] == [{"msg": "fine"}]
    [kept] = await list_quarantined_events(store, WS, trigger_path=trigger.path)
    assert (kept.dedup_key, kept.raw) == ("m-2", bad.raw)
    assert kept.error == "the job args hold a NUL character or an unpaired surrogate"
    assert kept.info == {"repr": repr({"url": text})}

"""An event over the size limit goes to the quarantine with the reason; the batch goes on."""

from __future__ import annotations

from gateway.jobs.read import get_job
from gateway.observability.metrics import GatewayMetrics
from gateway.store import Store
from gateway.triggers.event_limits import KEPT_BYTES
from gateway.triggers.pipeline import TriggerJobSink
from gateway.triggers.quarantine import list_quarantined_events

from ..support import WS, add_scripts
from .support import add_trigger, claim, frame

ECHO = "def main(msg: str):\n    return {'echo': msg}\n"


async def test_an_oversized_event_is_quarantined_and_the_rest_become_jobs(store: Store) -> None:
    await add_scripts(store, echo=ECHO)
    trigger = await add_trigger(store, "feed", filters=[{"key": "type", "value": "x"}])
    lease = await claim(store, trigger)
    huge = frame('{"type": "x", "pad": "' + "p" * 100_000 + '"}', "m-2")
    metrics = GatewayMetrics("test")
    sink = TriggerJobSink(store, metrics=metrics, max_event_bytes=4096)

    ids = await sink.submit(lease, [frame('{"type": "x"}', "m-1"), huge])

    assert [(await get_job(store, WS, job_id))["args"] for job_id in ids] == [
        {"msg": '{"type": "x"}'}
    ]
    [kept] = await list_quarantined_events(store, WS, trigger_path=trigger.path)
    assert kept.dedup_key == "m-2"
    assert kept.error == (
        f"event too large: {len(huge.raw)} bytes, over the limit of 4096 bytes "
        f"(GATEWAY_MAX_EVENT_BYTES); its first {KEPT_BYTES} bytes are kept"
    )
    assert kept.raw == huge.raw[:KEPT_BYTES]
    scrape = metrics.exposition().decode()
    assert 'gateway_events_quarantined_total{kind="websocket"' in scrape


async def test_without_a_limit_a_large_event_becomes_a_job(store: Store) -> None:
    await add_scripts(store, echo=ECHO)
    trigger = await add_trigger(store, "feed")
    lease = await claim(store, trigger)

    ids = await TriggerJobSink(store).submit(lease, [frame("x" * 100_000, "m-1")])

    assert len(ids) == 1
    assert await list_quarantined_events(store, WS, trigger_path=trigger.path) == []

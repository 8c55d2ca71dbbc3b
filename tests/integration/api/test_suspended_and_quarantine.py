"""Parked jobs of suspended triggers, and the quarantine, through the API."""

from __future__ import annotations

from gateway.jobs.read import get_job
from gateway.listeners.lease import TriggerRef
from gateway.triggers.event import Event
from gateway.triggers.quarantine import quarantine_event

from ..support import WS, job_of, submit
from .conftest import Api

KAFKA_TRIGGER = {
    "path": "u/alice/orders",
    "script_path": "f/t/hello",
    "is_flow": False,
    "kafka_resource_path": "u/alice/kafka",
    "topics": ["orders"],
    "group_id": "g1",
    "mode": "suspended",
}


async def _kafka_trigger(api: Api) -> None:
    http = await api.http()
    created = await http.post(
        f"/w/{WS}/resources/create",
        json={"path": "u/alice/kafka", "resource_type": "kafka", "value": {"brokers": ["b:9092"]}},
    )
    assert created.status_code in (200, 201), created.text
    response = await http.post(f"/w/{WS}/kafka_triggers/create", json=KAFKA_TRIGGER)
    assert response.status_code == 201, response.text


async def test_resume_and_cancel_parked_jobs(asgi_api: Api) -> None:
    await _kafka_trigger(asgi_api)
    parked = job_of(
        "hello", trigger_kind="kafka", trigger="u/alice/orders", suspended=True, args={}
    )
    first, second = await submit(asgi_api.store, parked, parked)
    http = await asgi_api.http()
    base = f"/w/{WS}/trigger/kafka"
    resumed = await http.post(
        f"{base}/resume_suspended_trigger_jobs/u/alice/orders", json={"job_ids": [str(first)]}
    )
    assert resumed.status_code == 200, resumed.text
    assert resumed.json() == "Reassigned 1 jobs"
    assert (await get_job(asgi_api.store, WS, first))["job_kind"] in ("script", "singlestepflow")
    canceled = await http.post(f"{base}/cancel_suspended_trigger_jobs/u/alice/orders", json={})
    assert canceled.json() == "Canceled 1 jobs"
    assert (await get_job(asgi_api.store, WS, second))["status"] == "canceled"
    none_left = await http.post(f"{base}/cancel_suspended_trigger_jobs/u/alice/orders")
    assert none_left.json() == "No jobs to cancel"
    assert "kafka_triggers.resume_suspended_jobs" in await asgi_api.audit_operations()


async def test_quarantine_list_get_and_redrive(asgi_api: Api) -> None:
    await _kafka_trigger(asgi_api)
    trigger = TriggerRef("kafka", WS, "u/alice/orders")
    event = Event("kafka", b"\xff\xfe", {"topic": "orders"}, "orders/0/7", b"\xff\xfe")
    async with asgi_api.store.transaction() as tx:
        event_id = await quarantine_event(tx, trigger, event, "script f/t/gone not found")
    http = await asgi_api.http()
    (listed,) = (await http.get(f"/w/{WS}/quarantine/list")).json()
    assert listed["id"] == event_id
    assert listed["raw_base64"] == "//4="
    assert listed["error"] == "script f/t/gone not found"
    one = await http.get(f"/w/{WS}/quarantine/get/{event_id}")
    assert one.json()["dedup_key"] == "orders/0/7"
    redriven = await http.post(f"/w/{WS}/quarantine/redrive/{event_id}")
    assert redriven.status_code == 200, redriven.text
    job = await get_job(asgi_api.store, WS, redriven.json()["job_id"])
    assert job["trigger"] == "u/alice/orders"
    assert (await http.get(f"/w/{WS}/quarantine/get/nope")).status_code == 400

"""Every endpoint family honours the token's scopes: its own domain opens it, no other does."""

from __future__ import annotations

from gateway.listeners.lease import TriggerRef
from gateway.settings import Settings
from gateway.store.trigger_tables import TRIGGER_TABLES
from gateway.triggers.event import Event
from gateway.triggers.quarantine import quarantine_event

from ..support import OWNER, WS
from .conftest import Api
from .test_workspace_isolation import api_routes, concrete

FAMILY_LISTS = {
    "variables": "variables/list",
    "resources": "resources/list",
    "scripts": "scripts/list",
    "flows": "flows/list",
    "jobs": "jobs/list",
    "audit_logs": "audit/list",
    **{f"{kind}_triggers": f"{kind}_triggers/list" for kind in TRIGGER_TABLES},
}
"""The scope domain of each family, and the listing it opens."""
FILTERED = {
    "/w/{workspace}/users/whoami",
    "/w/{workspace}/triggers/status",
    "/w/{workspace}/quarantine/list",
}
"""Routes a token with no scope of theirs may call: who it is, and lists it sees nothing of."""


async def test_each_domain_opens_its_own_family_only(asgi_api: Api) -> None:
    for domain, own in FAMILY_LISTS.items():
        http = await asgi_api.http(await asgi_api.token_for(OWNER, scopes=[f"{domain}:read"]))
        assert (await http.get(f"/w/{WS}/{own}")).status_code == 200, domain
        for other, listing in FAMILY_LISTS.items():
            if other != domain:
                refused = await http.get(f"/w/{WS}/{listing}")
                assert refused.status_code == 403, f"{domain} token on {listing}"


async def test_a_token_without_the_scope_succeeds_nowhere(
    asgi_api: Api, settings: Settings
) -> None:
    http = await asgi_api.http(await asgi_api.token_for(OWNER, scopes=["unrelated:read"]))
    refused = 0
    for method, template in api_routes(asgi_api.store, settings):
        if not template.startswith("/w/"):
            continue
        response = await http.request(method, concrete(template), json={})
        if template in FILTERED:
            assert response.status_code == 200
            continue
        # 400 and 404: the request failed before the scope was looked at (an invalid body, an
        # object that does not exist); what matters is that nothing succeeded.
        assert response.status_code in (400, 403, 404), f"{method} {template}"
        refused += response.status_code == 403
    assert refused > 100
    status = await http.get(f"/w/{WS}/triggers/status")
    assert status.json() == []


async def test_run_scopes_name_the_script(asgi_api: Api) -> None:
    hello = await asgi_api.http(
        await asgi_api.token_for(OWNER, scopes=["jobs:run:scripts:f/t/hello"])
    )
    assert (await hello.post(f"/w/{WS}/jobs/run/p/f/t/hello", json={})).status_code == 201
    assert (await hello.post(f"/w/{WS}/jobs/run/p/f/t/other", json={})).status_code == 403
    assert (await hello.get(f"/w/{WS}/jobs/list")).status_code == 403
    folder = await asgi_api.http(await asgi_api.token_for(OWNER, scopes=["jobs:run:scripts:f/*"]))
    assert (await folder.post(f"/w/{WS}/jobs/run/p/f/t/hello", json={})).status_code == 201


async def test_a_path_scope_reaches_the_mode_of_its_triggers_only(asgi_api: Api) -> None:
    http = await asgi_api.http()
    body = {"script_path": "f/t/hello", "is_flow": False, "url": "wss://x.example", "filters": []}
    for path in ("f/ops/feed", "f/other/feed"):
        created = await http.post(f"/w/{WS}/websocket_triggers/create", json={**body, "path": path})
        assert created.status_code == 201
    scoped = await asgi_api.http(
        await asgi_api.token_for(OWNER, scopes=["websocket_triggers:write:f/ops/*"])
    )
    url = f"/w/{WS}/websocket_triggers/setmode"
    assert (await scoped.post(f"{url}/f/ops/feed", json={"mode": "disabled"})).status_code == 200
    assert (await scoped.post(f"{url}/f/other/feed", json={"mode": "disabled"})).status_code == 403


async def test_quarantined_events_follow_the_scopes_of_their_trigger(asgi_api: Api) -> None:
    trigger = TriggerRef("kafka", WS, "f/ops/orders")
    event = Event("kafka", b"{", {"topic": "orders"}, "orders/0/1", b"{")
    async with asgi_api.store.transaction() as tx:
        event_id = await quarantine_event(tx, trigger, event, "not JSON")
    kafka = await asgi_api.http(await asgi_api.token_for(OWNER, scopes=["kafka_triggers:read"]))
    assert [e["id"] for e in (await kafka.get(f"/w/{WS}/quarantine/list")).json()] == [event_id]
    assert (await kafka.get(f"/w/{WS}/quarantine/get/{event_id}")).status_code == 200
    assert (await kafka.post(f"/w/{WS}/quarantine/redrive/{event_id}")).status_code == 403
    nats = await asgi_api.http(await asgi_api.token_for(OWNER, scopes=["nats_triggers:write"]))
    assert (await nats.get(f"/w/{WS}/quarantine/list")).json() == []
    assert (await nats.get(f"/w/{WS}/quarantine/get/{event_id}")).status_code == 403

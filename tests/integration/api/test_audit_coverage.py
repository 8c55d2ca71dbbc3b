"""Every write of the management API leaves an audit row, and so does every read of a secret.

The write routes are read from the application: a new one fails `test_every_write_route_is_audited`
until a request for it is added here (or it is named as no write, with the reason).
"""

from __future__ import annotations

from typing import Any

import httpx

from gateway import capture
from gateway.http_routes.api.audit import ALL_TIME
from gateway.listeners.lease import TriggerRef
from gateway.settings import Settings
from gateway.store import fetch_all
from gateway.store.trigger_tables import TRIGGER_TABLES
from gateway.triggers.event import Event
from gateway.triggers.quarantine import quarantine_event

from ..support import OWNER, WS
from .conftest import Api
from .test_triggers import BODIES, add_resources
from .test_workspace_isolation import PARAM, api_routes

NOT_WRITES = {
    **{f"/w/{{workspace}}/{kind}_triggers/test": "tries a connection, stores nothing" for kind in (
        "kafka", "nats", "mqtt", "sqs", "gcp", "postgres", "websocket",
    )},
    "/w/{workspace}/http_triggers/route_exists": "a question",
    "/w/{workspace}/email_triggers/local_part_exists": "a question",
    "/w/{workspace}/capture/ping_config/{trigger_kind}/{runnable_kind}/{path:path}": "a heartbeat",
    "/w/{workspace}/jobs/run/f/{path:path}": "a flow job, audited as jobs.run in test_flows_api",
    "/w/{workspace}/jobs/run_wait_result/f/{path:path}": "the same, waiting for the result",
}  # fmt: skip
"""Routes that take POST or DELETE but change nothing the audit log should record."""
AUDITED_ELSEWHERE = {
    "/w/{workspace}/kafka_triggers/commit_offsets/{path:path}": "test_kafka_offsets (a broker)",
    "/w/{workspace}/kafka_triggers/reset_offsets/{path:path}": "test_kafka_offsets (a broker)",
    "/w/{workspace}/postgres_triggers/slot/create/{path:path}": "test_postgres_cdc_api",
    "/w/{workspace}/postgres_triggers/slot/delete/{path:path}": "test_postgres_cdc_api",
    "/w/{workspace}/postgres_triggers/publication/create/{publication}/{path:path}": "same",
    "/w/{workspace}/postgres_triggers/publication/update/{publication}/{path:path}": "same",
    "/w/{workspace}/postgres_triggers/publication/delete/{publication}/{path:path}": "same",
    "/w/{workspace}/flows/create": "test_flows_api",
    "/w/{workspace}/flows/update/{path:path}": "test_flows_api",
    "/w/{workspace}/flows/archive/{path:path}": "test_flows_api",
    "/w/{workspace}/flows/delete/{path:path}": "test_flows_api",
}
"""Writes whose audit rows are asserted by the tests that have the service they need."""


class Walk:
    """Sends write requests and checks that each one added audit rows."""

    def __init__(self, api: Api, http: httpx.AsyncClient) -> None:
        self.api = api
        self.http = http
        self.done: set[tuple[str, str]] = set()

    async def rows(self, workspace_id: str) -> int:
        found = await fetch_all(
            self.api.store,
            "list_audit_entries",
            username=None,
            resource=None,
            action_kind=None,
            since=ALL_TIME,
            workspace_id=workspace_id,
            operation=None,
            limit=100000,
            offset=0,
        )
        return len(found)

    async def write(
        self, method: str, template: str, body: Any = None, workspace_id: str = WS, **values: str
    ) -> httpx.Response:
        """Send one write to the route `template` and check it was audited."""
        before = await self.rows(workspace_id)
        url = PARAM.sub(lambda m: {"workspace": WS, **values}[m.group(1)], template)
        response = await self.http.request(method, url, json=body)
        assert response.is_success, f"{method} {url}: {response.status_code} {response.text}"
        assert await self.rows(workspace_id) > before, f"{method} {template} left no audit row"
        self.done.add((method, template))
        return response


def trigger_body(kind: str, path: str) -> dict[str, Any]:
    """A valid create body of a trigger of `kind`."""
    body = {"path": path, "script_path": "f/t/hello", "is_flow": False, **BODIES[kind]}
    if kind == "http":
        body["route_path"] = f"audit/{path.rsplit('/', 1)[-1]}"
    if kind == "email":
        body["local_part"] = f"audit-{path.rsplit('/', 1)[-1]}"
    return body


async def walk_writes(walk: Walk, api: Api) -> None:
    """One successful request to every write route, in an order that makes each one valid."""
    w = "/w/{workspace}"
    await walk.write("POST", f"{w}/resources/type/create", {"name": "widget", "schema": {}})
    resource = {"path": "f/t/r1", "value": {"a": 1}, "resource_type": "widget"}
    await walk.write("POST", f"{w}/resources/create", resource)
    await walk.write(
        "POST", f"{w}/resources/update/{{path:path}}", {"description": "d"}, path="f/t/r1"
    )
    await walk.write(
        "POST", f"{w}/resources/update_value/{{path:path}}", {"value": {"a": 2}}, path="f/t/r1"
    )
    await walk.write("DELETE", f"{w}/resources/delete/{{path:path}}", path="f/t/r1")
    variable = {"path": "f/t/v1", "value": "x", "is_secret": True, "description": ""}
    await walk.write("POST", f"{w}/variables/create", variable)
    await walk.write(
        "POST", f"{w}/variables/update/{{path:path}}", {"description": "d"}, path="f/t/v1"
    )
    grant = {"owner": "u/bob", "write": False}
    await walk.write(
        "POST", f"{w}/acls/add/{{kind}}/{{path:path}}", grant, kind="variable", path="f/t/v1"
    )
    await walk.write(
        "POST", f"{w}/acls/remove/{{kind}}/{{path:path}}", grant, kind="variable", path="f/t/v1"
    )
    await walk.write("DELETE", f"{w}/variables/delete/{{path:path}}", path="f/t/v1")
    script = {"path": "f/t/s1", "content": "def main():\n    return 1\n", "language": "python3"}
    created = await walk.write("POST", f"{w}/scripts/create", script)
    await walk.write("POST", f"{w}/scripts/archive/p/{{path:path}}", path="f/t/s1")
    await walk.write("POST", f"{w}/scripts/delete/p/{{path:path}}", path="f/t/s1")
    assert created.status_code == 201
    await walk_jobs(walk)
    await walk_triggers(walk, api)
    await walk_captures(walk, api)
    walk.http = await api.http(await api.token_for(OWNER, None))  # not bound to one workspace
    await walk.write("POST", "/workspaces/create", {"id": "audited", "name": "A"}, "audited")
    token = await walk.write("POST", "/users/tokens/create", {"label": "x"}, "global")
    await walk.write(
        "DELETE", "/users/tokens/delete/{token_prefix}", None, "global", token_prefix=token.text
    )


async def walk_jobs(walk: Walk) -> None:
    w = "/w/{workspace}"
    await walk.write("POST", f"{w}/jobs/run/p/{{path:path}}", {}, path="f/t/hello")
    hello = (await walk.http.get(f"/w/{WS}/scripts/get/p/f/t/hello")).json()["hash"]
    await walk.write("POST", f"{w}/jobs/run/h/{{hash}}", {}, hash=hello)
    await walk.write("POST", f"{w}/jobs/run_wait_result/p/{{path:path}}", {}, path="f/t/hello")
    await walk.write("GET", f"{w}/jobs/run_wait_result/p/{{path:path}}", path="f/t/hello")
    for prefix in ("jobs", "jobs_u"):
        later = await walk.http.post(
            f"/w/{WS}/jobs/run/p/f/t/hello?scheduled_in_secs=3600", json={}
        )
        await walk.write(
            "POST", f"{w}/{prefix}/queue/cancel/{{id}}", {"reason": "audit"}, id=later.text
        )


async def walk_triggers(walk: Walk, api: Api) -> None:
    w = "/w/{workspace}"
    await add_resources(api)
    for kind in TRIGGER_TABLES:
        base = f"{w}/{kind}_triggers"
        path = f"f/t/{kind}_audited"
        await walk.write("POST", f"{base}/create", trigger_body(kind, path))
        await walk.write(
            "POST", f"{base}/update/{{path:path}}", trigger_body(kind, path), path=path
        )
        await walk.write("POST", f"{base}/setmode/{{path:path}}", {"mode": "suspended"}, path=path)
        await walk.write("POST", f"{base}/setenabled/{{path:path}}", {"enabled": True}, path=path)
        for action in ("resume", "cancel"):
            await walk.write(
                "POST",
                f"{w}/trigger/{{trigger_kind}}/{action}_suspended_trigger_jobs/{{path:path}}",
                {},
                trigger_kind=kind,
                path=path,
            )
        await walk.write("DELETE", f"{base}/delete/{{path:path}}", path=path)
    await walk.write("POST", f"{w}/http_triggers/create_many", [trigger_body("http", "f/t/many")])
    kept = await walk.http.post(
        f"/w/{WS}/kafka_triggers/create", json=trigger_body("kafka", "f/t/kept")
    )
    assert kept.status_code == 201
    event = Event("kafka", b"{}", {}, "audit/0/1", b"{}")
    async with api.store.transaction() as tx:
        event_id = await quarantine_event(tx, TriggerRef("kafka", WS, "f/t/kept"), event, "x")
    await walk.write("POST", f"{w}/quarantine/redrive/{{id}}", id=str(event_id))


async def walk_captures(walk: Walk, api: Api) -> None:
    w = "/w/{workspace}"
    config = {"trigger_kind": "webhook", "path": "f/t/hello", "is_flow": False}
    await walk.write("POST", f"{w}/capture/set_config", config)
    async with api.store.transaction() as tx:
        capture_id = await capture.insert_capture(
            tx,
            WS,
            path="f/t/hello",
            is_flow=False,
            trigger_kind="webhook",
            main_args={"a": 1},
            preprocessor_args=None,
            created_by="alice",
        )
    await walk.write("DELETE", f"{w}/capture/{{id:int}}", id=str(capture_id))
    await walk.write(
        "POST",
        f"{w}/capture/move/{{runnable_kind}}/{{path:path}}",
        {"new_path": "f/t/moved"},
        runnable_kind="script",
        path="f/t/hello",
    )


async def test_every_write_route_is_audited(served_api: Api, settings: Settings) -> None:
    walk = Walk(served_api, await served_api.http())
    await walk_writes(walk, served_api)
    skipped = NOT_WRITES.keys() | AUDITED_ELSEWHERE.keys()
    for method, template in api_routes(served_api.store, settings):
        writes = method in ("POST", "DELETE") or "run_wait_result" in template
        if writes and template not in skipped:
            assert (method, template) in walk.done, f"no audited request for {method} {template}"


async def test_every_read_of_a_secret_is_audited(asgi_api: Api) -> None:
    http = await asgi_api.http()
    secret = {"path": "f/t/pw", "value": "s3cret", "is_secret": True, "description": ""}
    assert (await http.post(f"/w/{WS}/variables/create", json=secret)).status_code == 201
    holder = {"path": "f/t/db", "value": {"password": "$var:f/t/pw"}, "resource_type": "x"}
    assert (await http.post(f"/w/{WS}/resources/create", json=holder)).status_code == 201
    reads = [
        f"/w/{WS}/variables/get_value/f/t/pw",
        f"/w/{WS}/variables/get/f/t/pw",
        f"/w/{WS}/resources/get_value_interpolated/f/t/db",
    ]
    for url in reads:
        assert "s3cret" in (await http.get(url)).text, url
    hidden = await http.get(f"/w/{WS}/variables/get/f/t/pw?decrypt_secret=false")
    assert "s3cret" not in hidden.text
    listed = await http.get(f"/w/{WS}/variables/list")
    assert "s3cret" not in listed.text
    operations = await asgi_api.audit_operations()
    assert operations.count("variables.decrypt_secret") == len(reads)


async def test_the_audit_list_filters_like_the_command(asgi_api: Api) -> None:
    http = await asgi_api.http()
    variable = {"path": "f/t/v", "value": "x", "is_secret": False, "description": ""}
    assert (await http.post(f"/w/{WS}/variables/create", json=variable)).status_code == 201
    resource = {"path": "f/u/r", "value": {}, "resource_type": "x"}
    assert (await http.post(f"/w/{WS}/resources/create", json=resource)).status_code == 201

    async def listed(query: str) -> list[str]:
        response = await http.get(f"/w/{WS}/audit/list?{query}")
        assert response.status_code == 200, response.text
        return [entry["operation"] for entry in response.json()]

    assert await listed("") == ["resources.create", "variables.create"]
    assert await listed("operation=variables") == ["variables.create"]
    assert await listed("resource=f/u") == ["resources.create"]
    assert await listed("username=alice&action_kind=create") == await listed("")
    assert await listed("username=bob") == []
    assert await listed("after=2999-01-01T00:00:00") == []
    assert (await http.get(f"/w/{WS}/audit/list?after=soon")).status_code == 400

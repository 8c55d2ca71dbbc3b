"""The PostgreSQL extras of the management API (slots, publications, version, configuration)
against the CDC cluster, served in process over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from windmill_api.api.postgres_trigger import (
    get_postgres_publication,
    is_valid_postgres_configuration,
    list_postgres_replication_slot,
)
from windmill_api.client import AuthenticatedClient

from gateway.http_routes.api import errors, postgres_triggers
from gateway.http_routes.api.audit import ALL_TIME
from gateway.http_routes.api.tokens import issue_token
from gateway.store import Store, fetch_all

from ..support import OWNER, WS
from .brokers import next_batch
from .cdc_cluster import (
    RESOURCE_PATH,
    CdcSource,
    cdc_source,
    listener_on,
    resource_store,
    streaming,
)

pytestmark = pytest.mark.integration

BASE = f"/w/{WS}/postgres_triggers"


class Api:
    """HTTP clients of an app serving the PostgreSQL routes on a store with the CDC resource."""

    def __init__(self, store: Store, source: CdcSource, app: Starlette, token: str) -> None:
        self.store = store
        self.source = source
        # Starlette declares the ASGI callables more loosely than httpx expects them.
        self._transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        self.token = token

    def http(self, token: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url="http://gateway.test",
            transport=self._transport,
            headers={"Authorization": f"Bearer {token or self.token}"},
        )

    def windmill(self) -> AuthenticatedClient:
        client = AuthenticatedClient(base_url="http://gateway.test", token=self.token)
        client.set_async_httpx_client(self.http())
        return client

    async def token_with(self, scopes: list[str]) -> str:
        async with self.store.transaction() as tx:
            return await issue_token(tx, OWNER, WS, label="scoped", scopes=scopes)


@asynccontextmanager
async def serving(folder: Path) -> AsyncIterator[Api]:
    async with cdc_source() as source, resource_store(folder) as store:
        app = Starlette(routes=postgres_triggers.routes, exception_handlers=dict(errors.HANDLERS))
        app.state.gateway = SimpleNamespace(store=store)
        async with store.transaction() as tx:
            token = await issue_token(tx, OWNER, WS, label="test")
        try:
            yield Api(store, source, app, token)
        finally:
            # Publications the tests made through the API.
            await source.run(f"DROP PUBLICATION IF EXISTS {source.prefix}_api")


async def test_slots_are_created_listed_and_deleted_even_while_streamed(tmp_path: Path) -> None:
    async with serving(tmp_path) as api, api.http() as http:
        slot = f"{api.source.prefix}_api"
        created = await http.post(f"{BASE}/slot/create/{RESOURCE_PATH}", json={"name": slot})
        duplicate = await http.post(f"{BASE}/slot/create/{RESOURCE_PATH}", json={"name": slot})
        listed = (await http.get(f"{BASE}/slot/list/{RESOURCE_PATH}")).json()

        listener = listener_on(api.store, api.source.lease(replication_slot_name=slot))
        async with streaming(listener) as stream:
            deleted = await http.request(
                "DELETE", f"{BASE}/slot/delete/{RESOURCE_PATH}", json={"name": slot}
            )
            with pytest.raises(ConnectionError):
                await next_batch(stream)
        missing = await http.request(
            "DELETE", f"{BASE}/slot/delete/{RESOURCE_PATH}", json={"name": slot}
        )
        after = (await http.get(f"{BASE}/slot/list/{RESOURCE_PATH}")).json()
        audited = await fetch_all(
            api.store,
            "list_audit_entries",
            username=None,
            resource=None,
            action_kind=None,
            since=ALL_TIME,
            workspace_id=WS,
            operation=None,
            limit=100,
            offset=0,
        )

    assert (created.status_code, created.text) == (200, f"Slot {slot} created")
    assert [(row["operation"], row["resource"]) for row in reversed(audited)] == [
        ("postgres_triggers.slot.create", RESOURCE_PATH),
        ("postgres_triggers.slot.delete", RESOURCE_PATH),
    ]
    assert duplicate.status_code == 409
    assert {"slot_name": slot, "active": False} in listed
    assert {"slot_name": api.source.slot, "active": False} in listed
    assert (deleted.status_code, deleted.text) == (200, f"Slot {slot} deleted")
    assert missing.status_code == 404
    assert slot not in [entry["slot_name"] for entry in after]


async def test_a_slot_name_postgresql_refuses_is_a_bad_request(tmp_path: Path) -> None:
    async with serving(tmp_path) as api, api.http() as http:
        response = await http.post(f"{BASE}/slot/create/{RESOURCE_PATH}", json={"name": "Bad-Name"})

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "name"


async def test_publications_are_created_read_updated_and_deleted(tmp_path: Path) -> None:
    async with serving(tmp_path) as api, api.http() as http:
        name = f"{api.source.prefix}_api"
        url = f"{BASE}/publication/{{}}/{name}/{RESOURCE_PATH}"
        tables: dict[str, Any] = {
            "transaction_to_track": ["insert", "UPDATE"],
            "table_to_track": [
                {
                    "schema_name": "public",
                    "table_to_track": [
                        {"table_name": api.source.full, "columns_name": ["id", "note"]},
                        {"table_name": api.source.plain, "where_clause": "id > 10"},
                    ],
                }
            ],
        }
        created = await http.post(url.format("create"), json=tables)
        duplicate = await http.post(url.format("create"), json=tables)
        read = (await http.get(url.format("get"))).json()
        listed = (await http.get(f"{BASE}/publication/list/{RESOURCE_PATH}")).json()

        narrowed = {
            "transaction_to_track": ["delete"],
            "table_to_track": [
                {"schema_name": "public", "table_to_track": [{"table_name": api.source.plain}]}
            ],
        }
        updated = await http.post(url.format("update"), json=narrowed)
        after_update = (await http.get(url.format("get"))).json()
        everything = await http.post(url.format("update"), json={"transaction_to_track": []})
        after_everything = (await http.get(url.format("get"))).json()

        deleted = await http.delete(url.format("delete"))
        gone = await http.get(url.format("get"))

    assert (created.status_code, created.text) == (200, f"Publication {name} created")
    assert duplicate.status_code == 409
    assert read == {
        "transaction_to_track": ["insert", "update"],
        "table_to_track": [
            {
                "schema_name": "public",
                "table_to_track": [  # by name: <prefix>_full, <prefix>_plain
                    {"table_name": api.source.full, "columns_name": ["id", "note"]},
                    {"table_name": api.source.plain, "where_clause": "(id > 10)"},
                ],
            }
        ],
    }
    assert name in listed and api.source.publication in listed
    assert updated.status_code == 200
    assert after_update == {**narrowed, "transaction_to_track": ["delete"]}
    assert everything.status_code == 200
    assert after_everything == {"transaction_to_track": ["insert", "update", "delete"]}
    assert deleted.status_code == 200
    assert gone.status_code == 404


async def test_a_publication_the_database_refuses_says_why(tmp_path: Path) -> None:
    async with serving(tmp_path) as api, api.http() as http:
        url = f"{BASE}/publication/create/{api.source.prefix}_api/{RESOURCE_PATH}"
        unknown_table = await http.post(
            url,
            json={
                "table_to_track": [
                    {"schema_name": "public", "table_to_track": [{"table_name": "gw_no_such"}]}
                ]
            },
        )
        two_statements = await http.post(
            url,
            json={
                "table_to_track": [
                    {
                        "schema_name": "public",
                        "table_to_track": [
                            {
                                "table_name": api.source.plain,
                                "where_clause": "true); DROP TABLE x; SELECT (1",
                            }
                        ],
                    }
                ]
            },
        )
        bad_operation = await http.post(url, json={"transaction_to_track": ["merge"]})
        listed = (await http.get(f"{BASE}/publication/list/{RESOURCE_PATH}")).json()

    assert unknown_table.status_code == 400
    assert "gw_no_such" in unknown_table.json()["error"]["reason"]
    assert two_statements.status_code == 400
    assert "multiple commands" in two_statements.json()["error"]["reason"]
    assert bad_operation.json()["error"]["field"] == "transaction_to_track"
    assert f"{api.source.prefix}_api" not in listed


async def test_version_and_configuration_of_the_server(tmp_path: Path) -> None:
    async with serving(tmp_path) as api, api.http() as http:
        version = await http.get(f"{BASE}/postgres/version/{RESOURCE_PATH}")
        valid = await http.get(f"{BASE}/is_valid_postgres_configuration/{RESOURCE_PATH}")
        no_resource = await http.get(f"{BASE}/postgres/version/u/alice/nothing_here")

    assert version.status_code == 200
    assert version.json()[:2].isdigit()
    assert valid.json() is True
    assert no_resource.status_code == 404


async def test_changes_need_the_write_scope(tmp_path: Path) -> None:
    async with serving(tmp_path) as api:
        reader = await api.token_with(["postgres_triggers:read"])
        async with api.http(reader) as http:
            listed = await http.get(f"{BASE}/slot/list/{RESOURCE_PATH}")
            refused = await http.post(
                f"{BASE}/slot/create/{RESOURCE_PATH}", json={"name": f"{api.source.prefix}_x"}
            )

    assert listed.status_code == 200
    assert refused.status_code == 403


async def test_the_windmill_client_reads_the_answers(tmp_path: Path) -> None:
    async with serving(tmp_path) as api:
        client = api.windmill()
        slots = await list_postgres_replication_slot.asyncio(WS, RESOURCE_PATH, client=client)
        publication = await get_postgres_publication.asyncio(
            WS, api.source.publication, RESOURCE_PATH, client=client
        )
        valid = await is_valid_postgres_configuration.asyncio(WS, RESOURCE_PATH, client=client)

    assert slots is not None
    assert api.source.slot in [slot.slot_name for slot in slots]
    assert publication is not None
    assert publication.transaction_to_track == ["insert", "update", "delete"]
    assert valid is True

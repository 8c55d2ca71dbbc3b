"""Flows as data through the API, driven by the `windmill-api` client: create, update, versions,
validation, archive, delete, who may see and change them, one workspace apart from another."""

from __future__ import annotations

import json
from typing import Any

from windmill_api.api.flow import (
    archive_flow_by_path,
    create_flow,
    delete_flow_by_path,
    exists_flow_by_path,
    get_flow_by_path,
    get_flow_history,
    get_flow_latest_version,
    get_flow_version,
    list_flows,
    update_flow,
)
from windmill_api.models.archive_flow_by_path_json_body import ArchiveFlowByPathJsonBody
from windmill_api.models.create_flow_json_body import CreateFlowJsonBody
from windmill_api.models.update_flow_json_body import UpdateFlowJsonBody

from gateway.workspaces import Identity, ensure_workspace

from ..support import OWNER, WS
from .conftest import Api
from .test_auth import BOB, add_user

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def add_one(n_expr: str = "flow_input.n") -> dict[str, Any]:
    """A one-step flow value: a python3 step that adds one to its input."""
    return {
        "modules": [
            {
                "id": "a",
                "value": {
                    "type": "rawscript",
                    "language": "python3",
                    "content": "def main(n: int):\n    return n + 1\n",
                    "input_transforms": {"n": {"type": "javascript", "expr": n_expr}},
                },
            }
        ]
    }


def flow_body(path: str, value: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A create/update body as Windmill's UI sends it."""
    return {
        "path": path,
        "summary": fields.pop("summary", "adds one"),
        "description": "",
        "value": value if value is not None else add_one(),
        "schema": SCHEMA,
        **fields,
    }


async def create(api: Api, path: str, token: str | None = None, **fields: Any) -> Any:
    """POST flows/create with the client; the raw response."""
    client = await api.client(token)
    return await create_flow.asyncio_detailed(
        WS, client=client, json_body=CreateFlowJsonBody.from_dict(flow_body(path, **fields))
    )


async def test_flow_is_created_read_listed_and_versioned(asgi_api: Api) -> None:
    client = await asgi_api.client()
    created = await create(asgi_api, "f/t/add_one")
    assert (created.status_code, created.content.decode()) == (201, "f/t/add_one")

    saved = await get_flow_by_path.asyncio(WS, "f/t/add_one", client=client)
    assert saved is not None
    as_sent = saved.to_dict()
    assert as_sent["value"] == add_one() and as_sent["schema"] == SCHEMA
    assert (as_sent["summary"], as_sent["edited_by"], as_sent["archived"]) == (
        "adds one",
        "alice",
        False,
    )
    assert await exists_flow_by_path.asyncio(WS, "f/t/add_one", client=client) is True
    assert await exists_flow_by_path.asyncio(WS, "f/t/none", client=client) is False

    changed = flow_body("f/t/add_one", add_one("flow_input.n * 2"), summary="doubles, adds one")
    updated = await update_flow.asyncio_detailed(
        WS, "f/t/add_one", client=client, json_body=UpdateFlowJsonBody.from_dict(changed)
    )
    assert updated.status_code == 200

    history = await get_flow_history.asyncio(WS, "f/t/add_one", client=client) or []
    assert len(history) == 2 and history[0].id > history[1].id
    assert all(version.created_by == "alice" for version in history)
    latest = await get_flow_latest_version.asyncio(WS, "f/t/add_one", client=client)
    assert latest is not None and latest.id == history[0].id
    first = await get_flow_version.asyncio_detailed(WS, history[1].id, client=client)
    assert first.parsed is not None and json.loads(first.content)["value"] == add_one()
    current = await get_flow_by_path.asyncio(WS, "f/t/add_one", client=client)
    assert current is not None
    assert current.to_dict()["value"] == add_one("flow_input.n * 2")
    assert current.to_dict()["version_id"] == history[0].id

    listed = await list_flows.asyncio(WS, client=client) or []
    assert [(flow.to_dict()["path"], flow.to_dict()["summary"]) for flow in listed] == [
        ("f/t/add_one", "doubles, adds one")
    ]
    assert await asgi_api.audit_operations() == ["flows.create", "flows.update"]


async def test_saving_the_same_definition_again_writes_no_version(asgi_api: Api) -> None:
    client = await asgi_api.client()
    await create(asgi_api, "f/t/add_one")
    again = await update_flow.asyncio_detailed(
        WS,
        "f/t/add_one",
        client=client,
        json_body=UpdateFlowJsonBody.from_dict(flow_body("f/t/add_one")),
    )

    assert again.status_code == 200
    assert len(await get_flow_history.asyncio(WS, "f/t/add_one", client=client) or []) == 1
    assert await asgi_api.audit_operations() == ["flows.create"]


async def test_an_unsupported_module_is_refused_naming_the_field(asgi_api: Api) -> None:
    suspend = {"required_events": 1}
    approval = {"modules": [{"id": "a", "value": {"type": "identity"}, "suspend": suspend}]}
    unknown = {"modules": [{"id": "a", "value": {"type": "graphql"}}]}

    for value, field in (
        (approval, "value.modules[0].suspend"),
        (unknown, "value.modules[0].value.type"),
    ):
        refused = await create(asgi_api, "f/t/bad", value=value)
        assert refused.status_code == 400
        assert json.loads(refused.content)["error"]["field"] == field
    assert await exists_flow_by_path.asyncio(WS, "f/t/bad", client=await asgi_api.client()) is False


async def test_create_refuses_an_existing_path_and_update_a_missing_one(asgi_api: Api) -> None:
    client = await asgi_api.client()
    await create(asgi_api, "f/t/add_one")

    assert (await create(asgi_api, "f/t/add_one")).status_code == 409
    missing = await update_flow.asyncio_detailed(
        WS, "f/t/none", client=client, json_body=UpdateFlowJsonBody.from_dict(flow_body("f/t/none"))
    )
    assert missing.status_code == 404
    renamed = await update_flow.asyncio_detailed(
        WS,
        "f/t/add_one",
        client=client,
        json_body=UpdateFlowJsonBody.from_dict(flow_body("f/t/other")),
    )
    assert renamed.status_code == 400
    assert json.loads(renamed.content)["error"]["field"] == "path"


async def test_archived_flows_leave_the_list_and_deleted_ones_are_gone(asgi_api: Api) -> None:
    client = await asgi_api.client()
    await create(asgi_api, "f/t/add_one")

    archived = await archive_flow_by_path.asyncio_detailed(
        WS,
        "f/t/add_one",
        client=client,
        json_body=ArchiveFlowByPathJsonBody.from_dict({"archived": True}),
    )
    assert archived.status_code == 200
    assert await list_flows.asyncio(WS, client=client) == []
    shown = await list_flows.asyncio(WS, client=client, show_archived=True) or []
    assert [flow.to_dict()["archived"] for flow in shown] == [True]

    deleted = await delete_flow_by_path.asyncio_detailed(WS, "f/t/add_one", client=client)
    assert deleted.status_code == 200
    assert await exists_flow_by_path.asyncio(WS, "f/t/add_one", client=client) is False
    gone = await get_flow_by_path.asyncio_detailed(WS, "f/t/add_one", client=client)
    assert gone.status_code == 404
    again = await delete_flow_by_path.asyncio_detailed(WS, "f/t/add_one", client=client)
    assert again.status_code == 404
    assert await asgi_api.audit_operations() == ["flows.create", "flows.archive", "flows.delete"]


async def test_a_user_sees_and_changes_only_what_their_paths_allow(asgi_api: Api) -> None:
    await add_user(asgi_api, BOB)
    bob = await asgi_api.token_for(BOB)
    await create(asgi_api, "u/alice/private")
    await create(asgi_api, "f/t/shared")
    bob_client = await asgi_api.client(bob)

    listed = await list_flows.asyncio(WS, client=bob_client) or []
    assert [flow.to_dict()["path"] for flow in listed] == ["f/t/shared"]
    hidden = await get_flow_by_path.asyncio_detailed(WS, "u/alice/private", client=bob_client)
    assert hidden.status_code == 404
    assert (await create(asgi_api, "u/alice/mine", token=bob)).status_code == 403
    assert (await create(asgi_api, "u/bob/mine", token=bob)).status_code == 201
    removed = await delete_flow_by_path.asyncio_detailed(WS, "u/alice/private", client=bob_client)
    assert removed.status_code == 403


async def test_a_read_only_token_cannot_save_flows(asgi_api: Api) -> None:
    reader = await asgi_api.token_for(OWNER, scopes=["flows:read"])
    await create(asgi_api, "f/t/add_one")

    assert (await create(asgi_api, "f/t/other", token=reader)).status_code == 403
    seen = await get_flow_by_path.asyncio(WS, "f/t/add_one", client=await asgi_api.client(reader))
    assert seen is not None


async def test_workspaces_do_not_see_each_other_s_flows(asgi_api: Api) -> None:
    async with asgi_api.store.transaction() as tx:
        await ensure_workspace(tx, "other", Identity("carol", "carol@example.com"))
    carol = await asgi_api.token_for(Identity("carol", "carol@example.com"), "other")
    await create(asgi_api, "f/t/add_one")
    carol_client = await asgi_api.client(carol)

    assert await list_flows.asyncio("other", client=carol_client) == []
    assert await exists_flow_by_path.asyncio("other", "f/t/add_one", client=carol_client) is False
    history = await get_flow_history.asyncio(WS, "f/t/add_one", client=await asgi_api.client())
    assert history is not None
    foreign = await get_flow_version.asyncio_detailed("other", history[0].id, client=carol_client)
    assert foreign.status_code == 404
    refused = await get_flow_by_path.asyncio_detailed(WS, "f/t/add_one", client=carol_client)
    assert refused.status_code in (401, 403, 404)

"""Grants (`extra_perms`): a user who does not own `u/alice/...` reads it with a read grant and
changes it with a write grant, for variables, resources, scripts and triggers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from windmill_api.api.granular_acl import add_granular_acls, get_granular_acls
from windmill_api.models.add_granular_acls_json_body import AddGranularAclsJsonBody
from windmill_api.models.add_granular_acls_kind import AddGranularAclsKind
from windmill_api.models.get_granular_acls_kind import GetGranularAclsKind

from ..support import OWNER, WS
from .conftest import Api
from .test_auth import BOB, add_user

SCRIPT = "def main():\n    return 1\n"


@dataclass(frozen=True)
class Family:
    """How to create, read, list and change one kind of object at `path` through the API."""

    kind: str
    create: tuple[str, dict[str, Any]]
    get: str
    listing: str
    change: tuple[str, dict[str, Any]]
    change_names_path: bool = False

    def url(self, template: str, path: str) -> str:
        """The API URL of `template` for the object at `path`."""
        return f"/w/{WS}/{template.format(path=path)}"


def _websocket(url: str) -> dict[str, Any]:
    return {"script_path": "f/t/hello", "is_flow": False, "url": url, "filters": []}


FAMILIES = [
    Family(
        "variable",
        ("variables/create", {"value": "v", "is_secret": False, "description": ""}),
        "variables/get/{path}",
        "variables/list",
        ("variables/update/{path}", {"description": "changed"}),
    ),
    Family(
        "resource",
        ("resources/create", {"value": {"a": 1}, "resource_type": "x"}),
        "resources/get/{path}",
        "resources/list",
        ("resources/update_value/{path}", {"value": {"a": 2}}),
    ),
    Family(
        "script",
        ("scripts/create", {"content": SCRIPT, "language": "python3", "summary": ""}),
        "scripts/get/p/{path}",
        "scripts/list",
        ("scripts/create", {"content": SCRIPT + "# v2\n", "language": "python3", "summary": ""}),
        change_names_path=True,
    ),
    Family(
        "websocket_trigger",
        ("websocket_triggers/create", _websocket("wss://feed.example/a")),
        "websocket_triggers/get/{path}",
        "websocket_triggers/list",
        ("websocket_triggers/update/{path}", _websocket("wss://feed.example/b")),
        change_names_path=True,
    ),
]


async def _create(http: httpx.AsyncClient, family: Family, path: str) -> int:
    template, body = family.create
    return (await http.post(family.url(template, path), json={**body, "path": path})).status_code


async def _change(http: httpx.AsyncClient, family: Family, path: str) -> int:
    template, body = family.change
    payload = {**body, "path": path} if family.change_names_path else body
    return (await http.post(family.url(template, path), json=payload)).status_code


async def _listed(http: httpx.AsyncClient, family: Family) -> list[str]:
    return [item["path"] for item in (await http.get(family.url(family.listing, ""))).json()]


async def _grant(http: httpx.AsyncClient, kind: str, path: str, owner: str, write: bool) -> int:
    body = {"owner": owner, "write": write}
    return (await http.post(f"/w/{WS}/acls/add/{kind}/{path}", json=body)).status_code


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.kind)
async def test_read_and_write_grants_open_another_users_object(
    asgi_api: Api, family: Family
) -> None:
    path = f"u/alice/{family.kind}_shared"
    alice = await asgi_api.http()
    await add_user(asgi_api, BOB)
    bob = await asgi_api.http(await asgi_api.token_for(BOB))
    assert await _create(alice, family, path) == 201

    assert (await bob.get(family.url(family.get, path))).status_code == 404
    assert path not in await _listed(bob, family)
    assert await _grant(bob, family.kind, path, "u/bob", True) == 404  # bob cannot see it

    assert await _grant(alice, family.kind, path, "u/bob", False) == 200
    assert (await bob.get(family.url(family.get, path))).status_code == 200
    assert path in await _listed(bob, family)
    assert await _change(bob, family, path) == 403
    assert await _grant(bob, family.kind, path, "u/bob", True) == 403  # grants do not pass on

    assert await _grant(alice, family.kind, path, "u/bob", True) == 200
    assert await _change(bob, family, path) in (200, 201)
    grants = await alice.get(f"/w/{WS}/acls/get/{family.kind}/{path}")
    assert grants.json() == {"u/bob": True}

    removed = await alice.post(f"/w/{WS}/acls/remove/{family.kind}/{path}", json={"owner": "u/bob"})
    assert removed.status_code == 200
    assert (await bob.get(family.url(family.get, path))).status_code == 404
    operations = await asgi_api.audit_operations()
    assert [op for op in operations if op.startswith("acls.")] == [
        "acls.add",
        "acls.add",
        "acls.remove",
    ]


async def test_a_grant_to_every_user_and_through_the_windmill_client(asgi_api: Api) -> None:
    alice = await asgi_api.http()
    await add_user(asgi_api, BOB)
    bob = await asgi_api.http(await asgi_api.token_for(BOB))
    variables = FAMILIES[0]
    assert await _create(alice, variables, "u/alice/team") == 201
    client = await asgi_api.client()
    added = await add_granular_acls.asyncio_detailed(
        WS,
        AddGranularAclsKind.VARIABLE,
        "u/alice/team",
        client=client,
        json_body=AddGranularAclsJsonBody(owner="g/all", write=False),
    )
    assert added.status_code == 200
    got = await get_granular_acls.asyncio(
        WS, GetGranularAclsKind.VARIABLE, "u/alice/team", client=client
    )
    assert got is not None and got.to_dict() == {"g/all": False}
    assert (await bob.get(f"/w/{WS}/variables/get/u/alice/team")).json()["value"] == "v"
    assert await _change(bob, variables, "u/alice/team") == 403


async def test_grants_are_checked_as_input(asgi_api: Api) -> None:
    alice = await asgi_api.http()
    assert await _create(alice, FAMILIES[0], "u/alice/x") == 201
    unknown_kind = await alice.post(f"/w/{WS}/acls/add/folder/u/alice/x", json={"owner": "u/b"})
    assert (unknown_kind.status_code, unknown_kind.json()["error"]["field"]) == (400, "kind")
    bad_owner = await alice.post(f"/w/{WS}/acls/add/variable/u/alice/x", json={"owner": "bob"})
    assert bad_owner.status_code == 400
    missing = await alice.post(f"/w/{WS}/acls/add/variable/u/alice/none", json={"owner": "u/b"})
    assert missing.status_code == 404
    assert OWNER.username == "alice"

"""Who may call the API: tokens, workspaces, scopes and the paths users own."""

from __future__ import annotations

from datetime import timedelta

from gateway.http_routes.api.audit import ALL_TIME
from gateway.http_routes.api.tokens import issue_token
from gateway.store import fetch_all
from gateway.store.values import utc_now
from gateway.workspaces import Identity, ensure_workspace

from ..support import OWNER, WS
from .conftest import Api

BOB = Identity("bob", "bob@example.com")


async def add_user(api: Api, user: Identity, workspace_id: str = WS) -> None:
    """Make `user` a plain (non-admin) user of the workspace."""
    async with api.store.transaction() as tx:
        await tx.execute(
            "upsert_user",
            workspace_id=workspace_id,
            username=user.username,
            email=user.email,
            is_admin=False,
            role="Developer",
        )


async def add_secret(api: Api, path: str = "u/alice/secret", value: str = "s3cret") -> None:
    """A secret variable of alice's."""
    async with api.store.transaction() as tx:
        await tx.execute(
            "upsert_variable",
            workspace_id=WS,
            path=path,
            value=value,
            is_secret=True,
            description="",
        )


async def test_missing_and_unknown_tokens_get_401_json(asgi_api: Api) -> None:
    http = await asgi_api.http()
    missing = await http.get(f"/w/{WS}/users/whoami", headers={"Authorization": ""})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "token" in missing.json()["error"]["reason"]
    unknown = await (await asgi_api.http("not-a-token")).get("/users/whoami")
    assert unknown.status_code == 401
    assert unknown.json()["message"] == "invalid or expired token"


async def test_expired_token_is_refused(asgi_api: Api) -> None:
    async with asgi_api.store.transaction() as tx:
        old = await issue_token(
            tx, OWNER, WS, label="old", expiration=utc_now() - timedelta(minutes=1)
        )
    expired = await asgi_api.http(old)
    assert (await expired.get(f"/w/{WS}/users/whoami")).status_code == 401
    past = await (await asgi_api.http()).post(
        "/users/tokens/create", json={"expiration": (utc_now() - timedelta(hours=1)).isoformat()}
    )
    assert (past.status_code, past.json()["error"]["field"]) == (400, "expiration")
    future = (utc_now() + timedelta(hours=1)).isoformat()
    created = await (await asgi_api.http()).post(
        "/users/tokens/create", json={"expiration": future}
    )
    assert (await (await asgi_api.http(created.text)).get("/users/whoami")).status_code == 200


async def test_token_of_another_workspace_gets_404_and_no_data(asgi_api: Api) -> None:
    await add_secret(asgi_api)
    async with asgi_api.store.transaction() as tx:
        await ensure_workspace(tx, "other", BOB)
    outsider = await asgi_api.http(await asgi_api.token_for(BOB, "other"))
    for url in (
        f"/w/{WS}/variables/get/u/alice/secret",
        f"/w/{WS}/variables/list",
        f"/w/{WS}/users/whoami",
        f"/w/{WS}/kafka_triggers/list",
    ):
        response = await outsider.get(url)
        assert response.status_code == 404, url
        assert "s3cret" not in response.text
        assert response.json()["message"] == f"workspace {WS!r} not found"
    # alice's token is bound to `test`: `other` is invisible to it, even where she could belong.
    bound = await asgi_api.http()
    assert (await bound.get("/w/other/users/whoami")).status_code == 404
    assert (await outsider.get("/w/other/users/whoami")).json()["username"] == "bob"


async def test_scopes_limit_what_a_token_does(asgi_api: Api) -> None:
    await add_secret(asgi_api, "f/t/shared")
    reader = await asgi_api.http(await asgi_api.token_for(OWNER, scopes=["variables:read"]))
    assert (await reader.get(f"/w/{WS}/variables/get_value/f/t/shared")).json() == "s3cret"
    write = await reader.post(
        f"/w/{WS}/variables/create",
        json={"path": "f/t/new", "value": "x", "is_secret": False, "description": ""},
    )
    assert write.status_code == 403
    assert (await reader.get(f"/w/{WS}/resources/list")).status_code == 403
    folder = await asgi_api.http(await asgi_api.token_for(OWNER, scopes=["variables:write:f/t/*"]))
    created = await folder.post(
        f"/w/{WS}/variables/create",
        json={"path": "f/t/new", "value": "x", "is_secret": False, "description": ""},
    )
    assert created.status_code == 201
    elsewhere = await folder.post(
        f"/w/{WS}/variables/create",
        json={"path": "f/ops/new", "value": "x", "is_secret": False, "description": ""},
    )
    assert elsewhere.status_code == 403
    widened = await reader.post("/users/tokens/create", json={"scopes": ["*"]})
    assert widened.status_code == 403


async def test_users_see_their_own_and_shared_paths_only(asgi_api: Api) -> None:
    await add_secret(asgi_api)
    await add_secret(asgi_api, "f/t/shared", "shared")
    await add_user(asgi_api, BOB)
    bob = await asgi_api.http(await asgi_api.token_for(BOB))
    assert (await bob.get(f"/w/{WS}/variables/get/u/alice/secret")).status_code == 404
    assert [v["path"] for v in (await bob.get(f"/w/{WS}/variables/list")).json()] == ["f/t/shared"]
    overwrite = await bob.post(f"/w/{WS}/variables/update/u/alice/secret", json={"value": "x"})
    assert overwrite.status_code == 404  # what bob may not see is absent, for writes too
    squat = await bob.post(
        f"/w/{WS}/variables/create",
        json={"path": "u/alice/new", "value": "x", "is_secret": False, "description": ""},
    )
    assert squat.status_code == 403
    mine = await bob.post(
        f"/w/{WS}/variables/create",
        json={"path": "u/bob/note", "value": "x", "is_secret": False, "description": ""},
    )
    assert mine.status_code == 201
    whoami = (await bob.get(f"/w/{WS}/users/whoami")).json()
    assert (whoami["username"], whoami["is_admin"]) == ("bob", False)


async def test_tokens_are_listed_by_prefix_and_revoked(asgi_api: Api) -> None:
    http = await asgi_api.http()
    created = await http.post("/users/tokens/create", json={"label": "ci", "scopes": ["jobs:read"]})
    assert created.status_code == 201 and len(created.text) == 32
    listed = (await http.get("/users/tokens/list")).json()
    mine = [t for t in listed if t["token_prefix"] == created.text[:10]]
    assert mine and mine[0]["label"] == "ci" and mine[0]["scopes"] == ["jobs:read"]
    assert all(len(t["token_prefix"]) == 10 for t in listed)
    revoked = await http.delete(f"/users/tokens/delete/{created.text[:10]}")
    assert revoked.status_code == 200
    assert (await (await asgi_api.http(created.text)).get("/users/whoami")).status_code == 401
    rows = await fetch_all(
        asgi_api.store,
        "list_audit_entries",
        username=None,
        resource=None,
        action_kind=None,
        since=ALL_TIME,
        workspace_id=WS,
        operation=None,
        limit=10,
        offset=0,
    )
    assert {r["operation"] for r in rows} == {"users.token.create", "users.token.delete"}


async def test_workspaces_are_created_and_listed(asgi_api: Api) -> None:
    async with asgi_api.store.transaction() as tx:
        unbound_token = await issue_token(tx, OWNER, None, label="global")
    unbound = await asgi_api.http(unbound_token)
    created = await unbound.post("/workspaces/create", json={"id": "team-b", "name": "Team B"})
    assert created.status_code == 201
    again = await unbound.post("/workspaces/create", json={"id": "team-b", "name": "Team B"})
    assert again.status_code == 409
    invalid = await unbound.post("/workspaces/create", json={"id": "No Spaces", "name": "x"})
    assert (invalid.status_code, invalid.json()["error"]["field"]) == (400, "id")
    listed = (await unbound.get("/workspaces/list")).json()
    assert [w["id"] for w in listed] == ["team-b", WS]
    bound = await asgi_api.http()
    assert [w["id"] for w in (await bound.get("/workspaces/list")).json()] == [WS]
    assert (
        await bound.post("/workspaces/create", json={"id": "c1", "name": "c"})
    ).status_code == 403
    assert await asgi_api.audit_operations("team-b") == ["workspaces.create"]

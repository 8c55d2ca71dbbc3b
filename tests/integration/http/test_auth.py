"""Authentication methods of routes: who may call, and who the job says called."""

from __future__ import annotations

import base64
from datetime import timedelta
from uuid import UUID

from gateway.http_routes.api.tokens import issue_token
from gateway.store import Store
from gateway.store.values import utc_now
from gateway.workspaces import Identity, ensure_workspace

from ..support import OWNER, WS, add_scripts, completed
from .conftest import Served, add_resource

BOB = Identity("bob", "bob@example.com")
GUARDED = (
    "def preprocessor(event):\n"
    "    if event['headers'].get('x-token') != 'open-sesame':\n"
    "        raise ValueError('bad token')\n"
    "    return {'raw': event['raw_string']}\n\n"
    "def main(raw):\n    return raw\n"
)


async def _token(store: Store, owner: Identity = OWNER, **options: object) -> str:
    workspace_id = str(options.pop("workspace_id", WS))
    async with store.transaction() as tx:
        await ensure_workspace(tx, workspace_id, OWNER)
        return await issue_token(tx, owner, workspace_id, label="test", **options)  # type: ignore[arg-type]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_windmill_auth_accepts_a_token_and_records_the_caller(served: Served) -> None:
    path = await served.add_route("mine", request_type="async", authentication_method="windmill")
    token = await _token(served.store)

    by_header = await served.client.post("/mine", json={}, headers=_bearer(token))
    by_cookie = await served.client.post("/mine", json={}, cookies={"token": token})

    assert by_header.status_code == by_cookie.status_code == 201
    job = await completed(served.store, UUID(by_header.text))
    assert job["created_by"] == "alice"
    assert job["permissioned_as"] == "u/alice"
    assert job["trigger"] == path


async def test_windmill_auth_refuses_missing_unknown_and_expired_tokens(served: Served) -> None:
    await served.add_route("mine", request_type="async", authentication_method="windmill")
    expired = await _token(served.store, expiration=utc_now() - timedelta(minutes=1))

    missing = await served.client.post("/mine", json={})
    unknown = await served.client.post("/mine", json={}, headers=_bearer("not-a-token"))
    too_old = await served.client.post("/mine", json={}, headers=_bearer(expired))

    assert (missing.status_code, missing.json()) == (401, {"error": "Requires authentication"})
    assert (unknown.status_code, unknown.json()) == (401, {"error": "Unauthorized"})
    assert too_old.status_code == 401


async def test_windmill_auth_checks_scopes_workspace_and_visibility(served: Served) -> None:
    path = await served.add_route("mine", request_type="async", authentication_method="windmill")
    async with served.store.transaction() as tx:
        await tx.execute(
            "upsert_user",
            workspace_id=WS,
            username="bob",
            email=BOB.email,
            is_admin=False,
            role=None,
        )
    allowed = [
        await _token(served.store, scopes=[f"http_triggers:read:{path}"]),
        await _token(served.store, scopes=["http_triggers:write:u/alice/*"]),
    ]
    refused = [
        await _token(served.store, scopes=["jobs:read"]),
        await _token(served.store, scopes=["http_triggers:read:f/other/*"]),
        await _token(served.store, workspace_id="elsewhere"),
        # bob is a user of the workspace, but cannot see alice's trigger
        await _token(served.store, BOB),
    ]

    for token in allowed:
        assert (
            await served.client.post("/mine", json={}, headers=_bearer(token))
        ).status_code == 201
    for token in refused:
        assert (
            await served.client.post("/mine", json={}, headers=_bearer(token))
        ).status_code == 401


async def test_api_key_compares_the_named_header_with_the_secret(served: Served) -> None:
    async with served.store.transaction() as tx:
        await tx.execute(
            "upsert_variable",
            workspace_id=WS,
            path="u/alice/key",
            value="k-123",
            is_secret=True,
            description="",
        )
    resource = await add_resource(
        served.store, {"api_key_header": "x-api-key", "api_key_secret": "$var:u/alice/key"}
    )
    await served.add_route(
        "keyed",
        request_type="async",
        authentication_method="api_key",
        authentication_resource_path=resource,
    )

    good = await served.client.post("/keyed", json={}, headers={"X-Api-Key": "k-123"})
    wrong = await served.client.post("/keyed", json={}, headers={"X-Api-Key": "k-124"})
    missing = await served.client.post("/keyed", json={})

    assert good.status_code == 201
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Unauthorized"})
    assert missing.status_code == 401
    assert "k-123" not in wrong.text


async def test_basic_auth_checks_user_and_password_and_challenges(served: Served) -> None:
    resource = await add_resource(served.store, {"username": "ada", "password": "s3:cret"})
    await served.add_route(
        "basic",
        request_type="async",
        authentication_method="basic_http",
        authentication_resource_path=resource,
    )

    good = await served.client.post("/basic", json={}, auth=("ada", "s3:cret"))
    wrong = await served.client.post("/basic", json={}, auth=("ada", "nope"))
    missing = await served.client.post("/basic", json={})
    garbled = await served.client.post(
        "/basic", json={}, headers={"Authorization": "Basic " + base64.b64encode(b"ada").decode()}
    )

    assert good.status_code == 201
    for refused in (wrong, missing, garbled):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Basic realm="Restricted Area"'


async def test_a_missing_auth_resource_is_a_500_naming_it(served: Served) -> None:
    await served.add_route(
        "orphan",
        authentication_method="api_key",
        authentication_resource_path="u/alice/gone",
    )

    response = await served.client.post("/orphan", json={}, headers={"x-api-key": "k"})

    assert response.status_code == 500
    assert "'u/alice/gone'" in response.json()["error"]


async def test_custom_script_auth_lets_the_preprocessor_judge_the_raw_body(served: Served) -> None:
    await add_scripts(served.store, guarded=GUARDED)
    await served.add_route("custom", script="guarded", authentication_method="custom_script")

    allowed = await served.client.post(
        "/custom", content=b'{"a": 1}', headers={"x-token": "open-sesame"}
    )
    refused = await served.client.post("/custom", content=b'{"a": 1}', headers={"x-token": "no"})

    assert (allowed.status_code, allowed.json()) == (200, '{"a": 1}')
    assert refused.status_code == 422
    assert "bad token" in refused.json()["error"]["message"]

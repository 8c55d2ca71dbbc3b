"""Secret variables at rest: sealed in the database, opened only by the audited API reads and
the `$var:` references of resources; a sealed value moved to another variable never opens."""

from __future__ import annotations

from gateway.secrets.cipher import is_sealed
from gateway.store import Store

from ..support import WS
from .conftest import Api

SECRET = "s3cr3t-value-for-the-at-rest-test"


async def stored_value(store: Store, path: str) -> str:
    async with store.transaction() as tx:
        row = await tx.fetch_one("get_variable", workspace_id=WS, path=path)
    assert row is not None
    return str(row["value"])


async def create(api: Api, path: str, value: str, *, is_secret: bool = True) -> None:
    http = await api.http()
    answer = await http.post(
        f"/w/{WS}/variables/create",
        json={"path": path, "value": value, "is_secret": is_secret, "description": ""},
    )
    assert answer.status_code == 201, answer.text


async def test_a_secret_is_stored_sealed_and_read_back_in_clear(asgi_api: Api) -> None:
    await create(asgi_api, "f/vault/token", SECRET)
    stored = await stored_value(asgi_api.store, "f/vault/token")
    assert is_sealed(stored) and SECRET not in stored

    http = await asgi_api.http()
    got = await http.get(f"/w/{WS}/variables/get/f/vault/token")
    assert got.json()["value"] == SECRET
    value = await http.get(f"/w/{WS}/variables/get_value/f/vault/token")
    assert value.json() == SECRET


async def test_a_plain_variable_is_stored_as_it_is(asgi_api: Api) -> None:
    await create(asgi_api, "f/vault/region", "eu-west-1", is_secret=False)
    assert await stored_value(asgi_api.store, "f/vault/region") == "eu-west-1"


async def test_updates_and_moves_keep_the_secret_readable(asgi_api: Api) -> None:
    await create(asgi_api, "f/vault/token", SECRET)
    http = await asgi_api.http()
    moved = await http.post(
        f"/w/{WS}/variables/update/f/vault/token", json={"path": "f/vault/moved"}
    )
    assert moved.status_code == 200, moved.text
    assert (await http.get(f"/w/{WS}/variables/get_value/f/vault/moved")).json() == SECRET

    changed = await http.post(
        f"/w/{WS}/variables/update/f/vault/moved", json={"value": "rotated-by-hand"}
    )
    assert changed.status_code == 200
    assert is_sealed(await stored_value(asgi_api.store, "f/vault/moved"))
    got = await http.get(f"/w/{WS}/variables/get_value/f/vault/moved")
    assert got.json() == "rotated-by-hand"

    unsecret = await http.post(f"/w/{WS}/variables/update/f/vault/moved", json={"is_secret": False})
    assert unsecret.status_code == 200
    assert await stored_value(asgi_api.store, "f/vault/moved") == "rotated-by-hand"


async def test_a_resource_resolves_a_secret_reference(asgi_api: Api) -> None:
    await create(asgi_api, "f/vault/password", SECRET)
    http = await asgi_api.http()
    created = await http.post(
        f"/w/{WS}/resources/create",
        json={
            "path": "f/vault/db",
            "resource_type": "postgresql",
            "value": {"user": "app", "password": "$var:f/vault/password"},
        },
    )
    assert created.status_code == 201, created.text
    stored = await http.get(f"/w/{WS}/resources/get_value/f/vault/db")
    assert stored.json()["password"] == "$var:f/vault/password"
    resolved = await http.get(f"/w/{WS}/resources/get_value_interpolated/f/vault/db")
    assert resolved.json() == {"user": "app", "password": SECRET}


async def test_a_sealed_value_copied_to_another_variable_is_refused(asgi_api: Api) -> None:
    await create(asgi_api, "f/vault/token", SECRET)
    await create(asgi_api, "f/vault/decoy", "harmless")
    sealed = await stored_value(asgi_api.store, "f/vault/token")
    async with asgi_api.store.transaction() as tx:
        await tx.execute("set_variable_value", workspace_id=WS, path="f/vault/decoy", value=sealed)
    http = await asgi_api.http()
    answer = await http.get(f"/w/{WS}/variables/get_value/f/vault/decoy")
    assert answer.status_code == 500
    assert SECRET not in answer.text


async def test_a_secret_of_the_largest_accepted_size_is_stored(asgi_api: Api) -> None:
    largest = "é" * 15000
    await create(asgi_api, "f/vault/large", largest)
    http = await asgi_api.http()
    assert (await http.get(f"/w/{WS}/variables/get_value/f/vault/large")).json() == largest

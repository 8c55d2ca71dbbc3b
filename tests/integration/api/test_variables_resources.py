"""Variables and resources through the API: secrets stay out of lists, references resolve."""

from __future__ import annotations

import json

from windmill_api.api.resource import (
    create_resource,
    exists_resource,
    get_resource,
    get_resource_value_interpolated,
    list_resource,
)
from windmill_api.api.variable import (
    create_variable,
    get_variable,
    get_variable_value,
    list_variable,
)
from windmill_api.models.create_resource_json_body import CreateResourceJsonBody
from windmill_api.models.create_variable_json_body import CreateVariableJsonBody

from ..support import WS
from .conftest import Api


async def test_secret_values_never_appear_in_variable_lists(asgi_api: Api) -> None:
    client = await asgi_api.client()
    for path, secret in (("u/alice/secret", True), ("u/alice/plain", False)):
        created = await create_variable.asyncio_detailed(
            WS,
            client=client,
            json_body=CreateVariableJsonBody.from_dict(
                {"path": path, "value": f"value of {path}", "is_secret": secret, "description": ""}
            ),
        )
        assert created.status_code == 201

    listed = await list_variable.asyncio(WS, client=client)
    assert listed is not None
    by_path = {v.path: v.to_dict() for v in listed}
    assert "value" not in by_path["u/alice/secret"]
    assert by_path["u/alice/plain"]["value"] == "value of u/alice/plain"
    raw = (await (await asgi_api.http()).get(f"/w/{WS}/variables/list")).text
    assert "value of u/alice/secret" not in raw

    got = await get_variable.asyncio(WS, "u/alice/secret", client=client)
    assert got is not None and got.value == "value of u/alice/secret"
    hidden = await get_variable.asyncio(WS, "u/alice/secret", client=client, decrypt_secret=False)
    assert hidden is not None and "value" not in hidden.to_dict()
    value = await get_variable_value.asyncio_detailed(WS, "u/alice/secret", client=client)
    assert value.content == b'"value of u/alice/secret"'
    operations = await asgi_api.audit_operations()
    assert operations.count("variables.decrypt_secret") == 2
    assert operations.count("variables.create") == 2


async def test_resource_value_interpolates_variables_and_resources(asgi_api: Api) -> None:
    client = await asgi_api.client()
    http = await asgi_api.http()
    await http.post(
        f"/w/{WS}/variables/create",
        json={"path": "u/alice/password", "value": "pw", "is_secret": True, "description": ""},
    )
    for path, value in (
        ("u/alice/tls", {"ca": "CERT"}),
        (
            "u/alice/db",
            {"host": "db", "password": "$var:u/alice/password", "tls": "$res:u/alice/tls"},
        ),
    ):
        created = await create_resource.asyncio_detailed(
            WS,
            client=client,
            json_body=CreateResourceJsonBody.from_dict(
                {"path": path, "value": value, "resource_type": "postgresql"}
            ),
        )
        assert created.status_code == 201

    resolved = await get_resource_value_interpolated.asyncio_detailed(
        WS, "u/alice/db", client=client
    )
    assert resolved.status_code == 200
    assert json.loads(resolved.content) == {"host": "db", "password": "pw", "tls": {"ca": "CERT"}}
    stored = await get_resource.asyncio(WS, "u/alice/db", client=client)
    assert stored is not None and stored.to_dict()["value"]["password"] == "$var:u/alice/password"
    assert await exists_resource.asyncio(WS, "u/alice/db", client=client) is True
    listed = await list_resource.asyncio(WS, client=client, resource_type="postgresql")
    assert [r.path for r in listed or []] == ["u/alice/db", "u/alice/tls"]

    loop = await http.post(
        f"/w/{WS}/resources/create",
        json={"path": "u/alice/loop", "value": "$res:u/alice/loop", "resource_type": "x"},
    )
    assert loop.status_code == 201
    endless = await http.get(f"/w/{WS}/resources/get_value_interpolated/u/alice/loop")
    assert endless.status_code == 400
    missing = await http.get(f"/w/{WS}/resources/get_value_interpolated/u/alice/none")
    assert missing.status_code == 404


async def test_resources_update_rename_and_delete(asgi_api: Api) -> None:
    http = await asgi_api.http()
    body = {"path": "f/t/api", "value": {"url": "a"}, "resource_type": "http"}
    assert (await http.post(f"/w/{WS}/resources/create", json=body)).status_code == 201
    assert (await http.post(f"/w/{WS}/resources/create", json=body)).status_code == 409
    value = await http.post(f"/w/{WS}/resources/update_value/f/t/api", json={"value": {"url": "b"}})
    assert value.status_code == 200
    renamed = await http.post(
        f"/w/{WS}/resources/update/f/t/api", json={"path": "f/t/api2", "description": "moved"}
    )
    assert renamed.text == "f/t/api2"
    got = (await http.get(f"/w/{WS}/resources/get/f/t/api2")).json()
    assert (got["value"], got["description"]) == ({"url": "b"}, "moved")
    assert (await http.get(f"/w/{WS}/resources/exists/f/t/api")).json() is False
    assert (await http.delete(f"/w/{WS}/resources/delete/f/t/api2")).status_code == 200
    assert (await http.delete(f"/w/{WS}/resources/delete/f/t/api2")).status_code == 404
    assert await asgi_api.audit_operations() == [
        "resources.create", "resources.update", "resources.update", "resources.delete",
    ]  # fmt: skip


async def test_resource_types_are_created_and_read(asgi_api: Api) -> None:
    http = await asgi_api.http()
    body = {"name": "kafka", "schema": {"type": "object"}, "description": "brokers"}
    assert (await http.post(f"/w/{WS}/resources/type/create", json=body)).status_code == 201
    assert (await http.post(f"/w/{WS}/resources/type/create", json=body)).status_code == 409
    got = (await http.get(f"/w/{WS}/resources/type/get/kafka")).json()
    assert (got["name"], got["schema"], got["created_by"]) == ("kafka", {"type": "object"}, "alice")
    assert [t["name"] for t in (await http.get(f"/w/{WS}/resources/type/list")).json()] == ["kafka"]
    assert (await http.get(f"/w/{WS}/resources/type/get/none")).status_code == 404

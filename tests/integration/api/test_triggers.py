"""Triggers through the management API: the `windmill-api` client end to end on Kafka, every
kind's read model, and what a write is refused for."""

from __future__ import annotations

from typing import Any

import pytest
from windmill_api.api.kafka_trigger import (
    create_kafka_trigger,
    delete_kafka_trigger,
    exists_kafka_trigger,
    get_kafka_trigger,
    list_kafka_triggers,
    set_kafka_trigger_mode,
    update_kafka_trigger,
)
from windmill_api.models import (
    get_email_trigger_response_200,
    get_gcp_trigger_response_200,
    get_http_trigger_response_200,
    get_kafka_trigger_response_200,
    get_mqtt_trigger_response_200,
    get_nats_trigger_response_200,
    get_postgres_trigger_response_200,
    get_sqs_trigger_response_200,
    get_websocket_trigger_response_200,
)
from windmill_api.models.create_kafka_trigger_json_body import CreateKafkaTriggerJsonBody
from windmill_api.models.set_kafka_trigger_mode_json_body import SetKafkaTriggerModeJsonBody
from windmill_api.models.update_kafka_trigger_json_body import UpdateKafkaTriggerJsonBody

from gateway.store import Json, fetch_one

from ..support import WS
from .conftest import Api

KAFKA: dict[str, Any] = {
    "path": "u/alice/orders",
    "script_path": "f/t/hello",
    "is_flow": False,
    "kafka_resource_path": "f/t/kafka",
    "group_id": "orders-gateway",
    "topics": ["orders"],
    "filters": [{"key": "type", "value": "order"}],
    "retry": {"constant": {"attempts": 2, "seconds": 5}},
}
RESOURCE_TYPE_OF = {
    "kafka": "kafka", "nats": "nats", "sqs": "aws", "gcp": "gcloud", "mqtt": "mqtt",
    "postgres": "postgresql", "websocket": None, "http": None, "email": None,
}  # fmt: skip
BODIES: dict[str, dict[str, Any]] = {
    "http": {"route_path": "orders/:id", "http_method": "post"},
    "websocket": {"url": "wss://feed.example/ws", "filters": []},
    "kafka": {"kafka_resource_path": "f/t/kafka", "group_id": "g", "topics": ["t"], "filters": []},
    "nats": {"nats_resource_path": "f/t/nats", "subjects": ["orders.>"], "use_jetstream": False},
    "sqs": {"queue_url": "https://sqs.example/q", "aws_resource_path": "f/t/sqs"},
    "gcp": {"gcp_resource_path": "f/t/gcp", "topic_id": "orders", "subscription_id": "orders-gw"},
    "mqtt": {
        "mqtt_resource_path": "f/t/mqtt", "subscribe_topics": [{"topic": "a/#", "qos": "qos1"}],
    },
    "postgres": {
        "postgres_resource_path": "f/t/postgres", "replication_slot_name": "slot",
        "publication_name": "pub",
    },
    "email": {"local_part": "orders"},
}  # fmt: skip
READ_MODELS = {
    "http": get_http_trigger_response_200.GetHttpTriggerResponse200,
    "websocket": get_websocket_trigger_response_200.GetWebsocketTriggerResponse200,
    "kafka": get_kafka_trigger_response_200.GetKafkaTriggerResponse200,
    "nats": get_nats_trigger_response_200.GetNatsTriggerResponse200,
    "sqs": get_sqs_trigger_response_200.GetSqsTriggerResponse200,
    "gcp": get_gcp_trigger_response_200.GetGcpTriggerResponse200,
    "mqtt": get_mqtt_trigger_response_200.GetMqttTriggerResponse200,
    "postgres": get_postgres_trigger_response_200.GetPostgresTriggerResponse200,
    "email": get_email_trigger_response_200.GetEmailTriggerResponse200,
}


async def add_resources(api: Api) -> None:
    """One resource per kind that needs one, at `f/t/<kind>`."""
    async with api.store.transaction() as tx:
        for kind, resource_type in RESOURCE_TYPE_OF.items():
            if resource_type is not None:
                await tx.execute(
                    "upsert_resource",
                    workspace_id=WS,
                    path=f"f/t/{kind}",
                    value=Json({"host": "localhost"}),
                    description="",
                    resource_type=resource_type,
                    created_by="alice",
                )


async def test_kafka_trigger_round_trip_with_the_windmill_client(asgi_api: Api) -> None:
    await add_resources(asgi_api)
    client = await asgi_api.client()

    created = await create_kafka_trigger.asyncio_detailed(
        WS, client=client, json_body=CreateKafkaTriggerJsonBody.from_dict(KAFKA)
    )
    assert (created.status_code, created.content) == (201, b"u/alice/orders")

    got = await get_kafka_trigger.asyncio(WS, "u/alice/orders", client=client)
    assert got is not None
    assert (got.topics, got.group_id, got["mode"]) == (["orders"], "orders-gateway", "enabled")
    assert got.retry is not None and got.retry.to_dict()["constant"] == {
        "attempts": 2,
        "seconds": 5,
    }
    assert (got["permissioned_as"], got["edited_by"]) == ("u/alice", "alice")
    assert "server_id" not in got.to_dict()  # no listener holds it yet

    for filters, expected in (
        ({}, ["u/alice/orders"]),
        ({"path_start": "u/alice/"}, ["u/alice/orders"]),
        ({"path_start": "f/"}, []),
        ({"path": "f/t/hello"}, ["u/alice/orders"]),
        ({"path": "f/t/other"}, []),
        ({"is_flow": True}, []),
        ({"page": 2, "per_page": 1}, []),
    ):
        listed = await list_kafka_triggers.asyncio(WS, client=client, **filters)
        assert [t.path for t in listed or []] == expected, filters

    assert await exists_kafka_trigger.asyncio(WS, "u/alice/orders", client=client) is True
    assert await exists_kafka_trigger.asyncio(WS, "u/alice/nothing", client=client) is False

    disabled = await set_kafka_trigger_mode.asyncio_detailed(
        WS,
        "u/alice/orders",
        client=client,
        json_body=SetKafkaTriggerModeJsonBody.from_dict({"mode": "disabled"}),
    )
    assert disabled.status_code == 200
    got = await get_kafka_trigger.asyncio(WS, "u/alice/orders", client=client)
    assert got is not None and got["mode"] == "disabled"

    renamed = {**KAFKA, "path": "f/t/orders", "topics": ["orders", "returns"], "mode": "enabled"}
    updated = await update_kafka_trigger.asyncio_detailed(
        WS,
        "u/alice/orders",
        client=client,
        json_body=UpdateKafkaTriggerJsonBody.from_dict(renamed),
    )
    assert updated.status_code == 200, updated.content
    assert await exists_kafka_trigger.asyncio(WS, "u/alice/orders", client=client) is False
    got = await get_kafka_trigger.asyncio(WS, "f/t/orders", client=client)
    assert got is not None and got.topics == ["orders", "returns"] and got["mode"] == "enabled"

    deleted = await delete_kafka_trigger.asyncio_detailed(WS, "f/t/orders", client=client)
    assert deleted.status_code == 200
    assert await exists_kafka_trigger.asyncio(WS, "f/t/orders", client=client) is False
    gone = await get_kafka_trigger.asyncio_detailed(WS, "f/t/orders", client=client)
    assert gone.status_code == 404

    assert [op for op in await asgi_api.audit_operations() if op.startswith("kafka")] == [
        "kafka_triggers.create",
        "kafka_triggers.setmode",
        "kafka_triggers.update",
        "kafka_triggers.delete",
    ]


@pytest.mark.parametrize("kind", sorted(BODIES))
async def test_every_kind_is_created_and_read_back_in_the_client_model(
    asgi_api: Api, kind: str
) -> None:
    await add_resources(asgi_api)
    http = await asgi_api.http()
    body = {"path": f"f/t/{kind}_trigger", "script_path": "f/t/hello", "is_flow": False}
    created = await http.post(f"/w/{WS}/{kind}_triggers/create", json={**body, **BODIES[kind]})
    assert created.status_code == 201, created.text
    got = await http.get(f"/w/{WS}/{kind}_triggers/get/f/t/{kind}_trigger")
    trigger = READ_MODELS[kind].from_dict(got.json())
    assert trigger.is_draft is False
    listed = (await http.get(f"/w/{WS}/{kind}_triggers/list")).json()
    assert [t["path"] for t in listed] == [f"f/t/{kind}_trigger"]
    assert listed[0]["mode"] == "enabled" and listed[0]["edited_by"] == "alice"


async def post_kafka(api: Api, **changes: Any) -> tuple[int, dict[str, Any]]:
    """Create a Kafka trigger with `changes` applied to a valid body."""
    response = await (await api.http()).post(
        f"/w/{WS}/kafka_triggers/create", json={**KAFKA, **changes}
    )
    return response.status_code, response.json() if response.status_code != 201 else {}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"retry": {"exponential": {"attempts": 2}}}, "retry.exponential.seconds"),
        ({"retry": {"constant": {"attempts": "many"}}}, "retry.constant.attempts"),
        ({"script_path": "f/t/missing"}, "script_path"),
        ({"kafka_resource_path": "f/t/missing"}, "kafka_resource_path"),
        ({"is_flow": True}, "script_path"),
        ({"error_handler_path": "f/t/missing"}, "error_handler_path"),
        ({"error_handler_path": "flow/f/t/on_error"}, "error_handler_path"),
        ({"filters": [{"key": "a", "path": "b", "value": 1}]}, "filters[0]"),
        ({"topics": []}, "topics"),
        ({"topics": ["orders", "no spaces"]}, "topics[1]"),
        ({"mode": "sleeping"}, "mode"),
        ({"path": "orders"}, "path"),
    ],
)
async def test_invalid_trigger_is_refused_naming_the_field(
    asgi_api: Api, changes: dict[str, Any], field: str
) -> None:
    await add_resources(asgi_api)
    status, body = await post_kafka(asgi_api, **changes)
    assert status == 400
    assert body["error"]["field"] == field
    assert body["message"].startswith(f"{field}: ")
    assert await asgi_api.audit_operations() == []


async def test_existing_path_is_a_conflict(asgi_api: Api) -> None:
    await add_resources(asgi_api)
    assert (await post_kafka(asgi_api))[0] == 201
    assert (await post_kafka(asgi_api))[0] == 409


async def test_http_routes_clash_on_method_and_canonical_route(asgi_api: Api) -> None:
    http = await asgi_api.http()
    base = {"script_path": "f/t/hello", "is_flow": False, "http_method": "post"}
    first = {**base, "path": "f/t/route1", "route_path": "orders/:id"}
    assert (await http.post(f"/w/{WS}/http_triggers/create", json=first)).status_code == 201
    same_route = {**base, "path": "f/t/route2", "route_path": "orders/:order_id"}
    clash = await http.post(f"/w/{WS}/http_triggers/create", json=same_route)
    assert clash.status_code == 409
    other_method = {**same_route, "http_method": "get"}
    assert (await http.post(f"/w/{WS}/http_triggers/create", json=other_method)).status_code == 201
    moved = {**first, "route_path": "orders/:id/lines"}
    updated = await http.post(f"/w/{WS}/http_triggers/update/f/t/route1", json=moved)
    assert updated.status_code == 200, updated.text
    got = (await http.get(f"/w/{WS}/http_triggers/get/f/t/route1")).json()
    assert got["route_path_key"] == "orders/:key/lines"


async def test_setmode_clears_the_server_state_of_a_leased_kind(asgi_api: Api) -> None:
    await add_resources(asgi_api)
    assert (await post_kafka(asgi_api))[0] == 201
    async with asgi_api.store.transaction() as tx:
        claimed = await tx.fetch_one(
            "claim_kafka_trigger",
            server_id="instance-a",
            status="Connecting...",
            workspace_id=WS,
            path="u/alice/orders",
            stale_after_s=15.0,
        )
    assert claimed is not None
    http = await asgi_api.http()
    held = (await http.get(f"/w/{WS}/kafka_triggers/get/u/alice/orders")).json()
    assert (held["server_id"], held["error"]) == ("instance-a", "Connecting...")
    assert "last_server_ping" in held

    response = await http.post(
        f"/w/{WS}/kafka_triggers/setmode/u/alice/orders", json={"mode": "suspended"}
    )
    assert response.text == "Trigger 'u/alice/orders' suspended"
    after = (await http.get(f"/w/{WS}/kafka_triggers/get/u/alice/orders")).json()
    assert after["mode"] == "suspended"
    assert not {"server_id", "error", "last_server_ping"} & set(after)


async def test_legacy_enabled_flag_sets_the_mode(asgi_api: Api) -> None:
    await add_resources(asgi_api)
    assert (await post_kafka(asgi_api, enabled=False))[0] == 201
    row = await fetch_one(asgi_api.store, "get_kafka_trigger", workspace_id=WS, path=KAFKA["path"])
    assert row is not None and row["mode"] == "disabled"
    http = await asgi_api.http()
    response = await http.post(
        f"/w/{WS}/kafka_triggers/setenabled/u/alice/orders", json={"enabled": True}
    )
    assert response.status_code == 200
    row = await fetch_one(asgi_api.store, "get_kafka_trigger", workspace_id=WS, path=KAFKA["path"])
    assert row is not None and row["mode"] == "enabled"
    missing = await http.post(f"/w/{WS}/kafka_triggers/setmode/u/alice/orders", json={})
    assert (missing.status_code, missing.json()["error"]["field"]) == (400, "mode")


async def test_update_replaces_the_whole_configuration(asgi_api: Api) -> None:
    http = await asgi_api.http()
    body = {
        "path": "f/t/feed",
        "script_path": "f/t/hello",
        "is_flow": False,
        "url": "wss://feed.example/ws",
        "filters": [],
        "heartbeat": {"interval_secs": 30, "message": "ping"},
        "labels": ["feeds"],
    }
    assert (await http.post(f"/w/{WS}/websocket_triggers/create", json=body)).status_code == 201
    without = {k: v for k, v in body.items() if k not in ("heartbeat", "labels")}
    updated = await http.post(f"/w/{WS}/websocket_triggers/update/f/t/feed", json=without)
    assert updated.text == "Trigger 'f/t/feed' updated"
    got = (await http.get(f"/w/{WS}/websocket_triggers/get/f/t/feed")).json()
    assert "heartbeat" not in got and "labels" not in got
    assert (got["initial_messages"], got["url_runnable_args"]) == ([], {})

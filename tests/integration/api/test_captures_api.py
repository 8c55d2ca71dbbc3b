"""Capture configs and captures through the `windmill-api` client."""

from __future__ import annotations

from windmill_api.api.capture import (
    get_capture_configs,
    list_captures,
    ping_capture_config,
    set_capture_config,
)
from windmill_api.models.get_capture_configs_runnable_kind import GetCaptureConfigsRunnableKind
from windmill_api.models.list_captures_runnable_kind import ListCapturesRunnableKind
from windmill_api.models.ping_capture_config_runnable_kind import PingCaptureConfigRunnableKind
from windmill_api.models.ping_capture_config_trigger_kind import PingCaptureConfigTriggerKind
from windmill_api.models.set_capture_config_json_body import SetCaptureConfigJsonBody

from gateway.capture import insert_capture

from ..support import WS
from .conftest import Api


async def test_capture_config_round_trip_with_the_client(asgi_api: Api) -> None:
    client = await asgi_api.client()
    body = SetCaptureConfigJsonBody.from_dict(
        {
            "trigger_kind": "kafka",
            "path": "f/t/hello",
            "is_flow": False,
            "trigger_config": {
                "kafka_resource_path": "u/alice/k",
                "topics": ["t"],
                "group_id": "g",
            },
        }
    )
    response = await set_capture_config.asyncio_detailed(WS, client=client, json_body=body)
    assert response.status_code == 200
    pinged = await ping_capture_config.asyncio_detailed(
        WS,
        PingCaptureConfigTriggerKind("kafka"),
        PingCaptureConfigRunnableKind("script"),
        "f/t/hello",
        client=client,
    )
    assert pinged.status_code == 200
    configs = await get_capture_configs.asyncio_detailed(
        WS, GetCaptureConfigsRunnableKind("script"), "f/t/hello", client=client
    )
    assert configs.status_code == 200
    (config,) = configs.parsed or []
    assert config.trigger_kind.value == "kafka"
    async with asgi_api.store.transaction() as tx:
        await insert_capture(
            tx, WS, path="f/t/hello", is_flow=False, trigger_kind="kafka",
            main_args={"payload": "eA=="}, preprocessor_args={"event": {"kind": "kafka"}},
            created_by="alice",
        )  # fmt: skip
    listed = await list_captures.asyncio_detailed(
        WS, ListCapturesRunnableKind("script"), "f/t/hello", client=client
    )
    assert listed.status_code == 200
    (captured,) = listed.parsed or []
    assert captured.to_dict()["main_args"] == {"payload": "eA=="}

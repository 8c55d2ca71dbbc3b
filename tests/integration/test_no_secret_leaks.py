"""No secret value leaks: with secret variables behind an `api_key` route and Kafka and NATS
resources, every answer of the API and the dashboard, every record of the `gateway` loggers,
and (SQLite) the bytes of the database file and its WAL are searched for the values in clear."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.http_routes.api.tokens import issue_token
from gateway.runtime import Gateway
from gateway.settings import Settings
from gateway.store.sqlite import sqlite_path

from .support import OWNER, WS, add_scripts, completed, eventually

EVENT = "def preprocessor(event):\n    return {'seen': event}\n\ndef main(seen):\n    return seen\n"
KAFKA = os.environ.get("GATEWAY_TEST_KAFKA", "127.0.0.1:29092")
NATS = os.environ.get("GATEWAY_TEST_NATS", "nats://127.0.0.1:4222")
KEY_HEADER = "X-Api-Key"


class Records(logging.Handler):
    """Every record of the `gateway` loggers, formatted with its traceback and extras."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(f"{self.format(record)} {record.__dict__!r}")


@pytest.fixture
def records() -> Iterator[Records]:
    """The records of the `gateway` loggers, at every level, during the test."""
    handler = Records()
    logger = logging.getLogger("gateway")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


class RecordingClient:
    """The API and the dashboard as alice, keeping every answer."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.answers: list[str] = []

    async def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        answer = await self.client.request(method, url, **kwargs)
        self.answers.append(f"{method} {url} {answer.status_code} {answer.headers} {answer.text}")
        return answer

    async def create(self, url: str, body: dict[str, Any]) -> None:
        answer = await self.call("POST", url, json=body)
        assert answer.status_code == 201, answer.text


def secret(kind: str) -> str:
    """A value that appears nowhere unless it leaked."""
    return f"{kind}-{uuid.uuid4().hex}"


def password_resources() -> dict[str, tuple[str, dict[str, Any]]]:
    """Resources whose credentials are `$var:` references to secrets."""
    return {
        "u/alice/route_auth": (
            "api_key",
            {"api_key_header": KEY_HEADER, "api_key_secret": "$var:u/alice/route_key"},
        ),
        "u/alice/kafka": (
            "kafka",
            {
                "brokers": [KAFKA],
                "security": {
                    "label": "SASL_PLAINTEXT",
                    "mechanism": "PLAIN",
                    "username": "gateway",
                    "password": "$var:u/alice/kafka_password",
                },
            },
        ),
        "u/alice/nats": (
            "nats",
            {
                "servers": [NATS],
                "auth": {
                    "label": "USER_PASSWORD",
                    "user": "gateway",
                    "password": "$var:u/alice/nats_password",
                },
            },
        ),
    }


def triggers() -> dict[str, dict[str, Any]]:
    """An `api_key` route, a Kafka and a NATS trigger on the resources above."""
    runnable = {"script_path": "f/t/event", "is_flow": False}
    return {
        "http": {
            **runnable,
            "path": "u/alice/keyed",
            "route_path": f"leaks/{uuid.uuid4().hex[:8]}",
            "http_method": "post",
            "request_type": "async",
            "authentication_method": "api_key",
            "authentication_resource_path": "u/alice/route_auth",
        },
        "kafka": {
            **runnable,
            "path": "u/alice/orders",
            "kafka_resource_path": "u/alice/kafka",
            "group_id": f"leaks-{uuid.uuid4().hex[:8]}",
            "topics": ["leaks"],
        },
        "nats": {
            **runnable,
            "path": "u/alice/subjects",
            "nats_resource_path": "u/alice/nats",
            "subjects": [f"leaks.{uuid.uuid4().hex[:8]}"],
            "use_jetstream": False,
        },
    }


async def call_route(base: str, route_path: str, key: str) -> tuple[uuid.UUID, list[str]]:
    """Call the route with a wrong key, then the right one; the job id and both answers."""
    async with httpx.AsyncClient(base_url=f"{base}/api/r", timeout=30) as caller:
        refused = await caller.post(f"/{route_path}", json={}, headers={KEY_HEADER: "wrong"})
        accepted = await caller.post(f"/{route_path}", json={"n": 1}, headers={KEY_HEADER: key})
    assert (refused.status_code, accepted.status_code) == (401, 201), accepted.text
    return uuid.UUID(accepted.text.strip().strip('"')), [refused.text, accepted.text]


async def read_everything(api: RecordingClient, base: str, job_id: uuid.UUID) -> None:
    """Every read of the API and the dashboard that concerns the fixtures."""
    reads = [
        f"/w/{WS}/jobs_u/get/{job_id}",
        f"/w/{WS}/jobs_u/completed/get_result/{job_id}",
        f"/w/{WS}/jobs_u/get_logs/{job_id}",
        f"/w/{WS}/jobs/list",
        f"/w/{WS}/jobs/completed/list",
        f"/w/{WS}/variables/list",
        f"/w/{WS}/resources/list",
        f"/w/{WS}/resources/get/u/alice/kafka",
        f"/w/{WS}/kafka_triggers/get/u/alice/orders",
        f"/w/{WS}/nats_triggers/get/u/alice/subjects",
        f"/w/{WS}/kafka_triggers/list",
        f"/w/{WS}/http_triggers/list",
        f"/w/{WS}/audit/list",
        *(f"/w/{WS}/variables/get/u/alice/{name}?decrypt_secret=false" for name in ("route_key",)),
        *(f"{base}/ui/w/{WS}/{page}" for page in ("", "failed-jobs", "quarantine")),
    ]
    for url in reads:
        assert (await api.call("GET", url)).status_code == 200, url
    for kind in ("kafka", "nats"):
        connection = {f"{kind}_resource_path": f"u/alice/{kind}"}
        await api.call("POST", f"/w/{WS}/{kind}_triggers/test", json={"connection": connection})


async def test_secret_values_appear_in_no_answer_log_or_database_file(
    settings: Settings, records: Records
) -> None:
    secrets = {
        "u/alice/route_key": secret("routekey"),
        "u/alice/kafka_password": secret("kafkapw"),
        "u/alice/nats_password": secret("natspw"),
    }
    async with Gateway.running(settings) as gateway:
        await add_scripts(gateway.store, event=EVENT)
        async with gateway.store.transaction() as tx:
            token = await issue_token(tx, OWNER, WS, label="leaks")
        base = f"http://127.0.0.1:{gateway.http_port}"
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=f"{base}/api", headers=headers, timeout=30) as http:
            api = RecordingClient(http)
            for path, value in secrets.items():
                body = {"path": path, "value": value, "is_secret": True, "description": ""}
                await api.create(f"/w/{WS}/variables/create", body)
            for path, (resource_type, value) in password_resources().items():
                body = {"path": path, "resource_type": resource_type, "value": value}
                await api.create(f"/w/{WS}/resources/create", body)
            wanted = triggers()
            for kind, body in wanted.items():
                await api.create(f"/w/{WS}/{kind}_triggers/create", body)

            job_id, route_answers = await call_route(
                base, wanted["http"]["route_path"], secrets["u/alice/route_key"]
            )
            api.answers += route_answers
            done = await completed(gateway.store, job_id)
            # The job saw the request's headers, but not the one that carried the key.
            seen_headers = done["result"]["headers"]
            assert "content-type" in seen_headers and KEY_HEADER.lower() not in seen_headers

            async def listeners_reported() -> bool:
                states = [
                    (await http.get(f"/w/{WS}/{kind}_triggers/get/{wanted[kind]['path']}")).json()
                    for kind in ("kafka", "nats")
                ]
                return all(state.get("server_id") or state.get("error") for state in states)

            await eventually(listeners_reported, timeout_s=30)
            await read_everything(api, base, job_id)

            # The one read that shows a secret, proving the values above were live.
            shown = await http.get(f"/w/{WS}/variables/get_value/u/alice/route_key")
            assert shown.json() == secrets["u/alice/route_key"]

    assert api.answers and records.texts
    for value in secrets.values():
        assert not [a for a in api.answers if value in a], f"an answer shows {value}"
        assert not [r for r in records.texts if value in r], f"a log record shows {value}"
    if settings.database_url.startswith("sqlite"):
        database = Path(sqlite_path(settings.database_url))
        files = [database, database.with_name(database.name + "-wal")]
        stored = b"".join(path.read_bytes() for path in files if path.exists())
        assert stored
        for value in secrets.values():
            assert value.encode() not in stored, f"the database file holds {value} in clear"

"""A Kafka trigger's consumer-group offsets, set by hand (reference 5.2):

    POST /w/{workspace}/kafka_triggers/commit_offsets/{path}   {"topic", "partition", "offset"}
    POST /w/{workspace}/kafka_triggers/reset_offsets/{path}    no body

`commit_offsets` stores `offset` (the next record the group reads) for one partition of one of the
trigger's topics; `reset_offsets` stores the beginning of every partition of its topics and
answers with what it stored. Both go through the short-lived clients of
`gateway.listeners.kafka`, which never join the group: Kafka accepts their commits only while the
group has no member, so a running trigger answers 409 until it is disabled.

Both need the `kafka_triggers:write:<path>` scope and a trigger the caller may change, and are
audited as `kafka_triggers.commit_offsets` and `kafka_triggers.reset_offsets`. A broker that
cannot be reached is blamed on the trigger's resource (400). The Kafka client is imported when a
request comes, so that an installation without `gateway[kafka]` still serves the rest of the API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.http_routes.api import audit
from gateway.http_routes.api.auth import Caller, in_workspace
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.permissions import require_visible, require_writable
from gateway.http_routes.api.request_parsing import parse_model, read_json
from gateway.listeners.kafka_config import KafkaResource, KafkaTriggerConfig, parse_resource
from gateway.listeners.kafka_config import validate_trigger as validate_kafka_trigger
from gateway.resources import resource_value

DOMAIN: Final = "kafka_triggers"
BROKER_TIMEOUT_S: Final = 30.0
"""How long one request may wait for the brokers (connecting, reading offsets, committing)."""


class OffsetCommit(BaseModel):
    """The body of `commit_offsets`: where the group resumes on one partition."""

    model_config = ConfigDict(extra="ignore")

    topic: str = Field(min_length=1)
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)


async def _trigger(request: Request, caller: Caller) -> tuple[str, KafkaTriggerConfig]:
    """The path and configuration of the trigger the request names, once the caller may change
    its offsets."""
    path = request.path_params["path"]
    caller.require_scope(DOMAIN, "write", path)
    require_visible(caller, path, "trigger")
    require_writable(caller, path)
    async with store_of(request).transaction() as tx:
        row = await tx.fetch_one("get_kafka_trigger", workspace_id=caller.workspace_id, path=path)
    if row is None:
        raise NotFound(f"Trigger not found at path: {path}")
    return path, validate_kafka_trigger(row)


async def _resource(request: Request, caller: Caller, config: KafkaTriggerConfig) -> KafkaResource:
    value = await resource_value(store_of(request), caller.workspace_id, config.kafka_resource_path)
    return parse_resource(value)


@asynccontextmanager
async def _brokers(resource: KafkaResource) -> AsyncIterator[None]:
    """Bound the wait for the brokers, and blame what goes wrong with them on the resource."""
    try:
        from aiokafka.errors import KafkaError
    except ModuleNotFoundError:
        raise Conflict(
            "this gateway instance has no Kafka client: install gateway[kafka] to manage offsets"
        ) from None
    where = ", ".join(resource.brokers)
    try:
        async with asyncio.timeout(BROKER_TIMEOUT_S):
            yield
    except TimeoutError:
        raise InvalidInput(
            "resource", f"Kafka brokers {where} did not answer within {BROKER_TIMEOUT_S:.0f}s"
        ) from None
    except (ConnectionError, KafkaError) as exc:
        raise InvalidInput("resource", f"Kafka brokers {where}: {exc}") from None


async def commit(request: Request, caller: Caller) -> Response:
    """Set the group's committed offset on one partition of one of the trigger's topics."""
    path, config = await _trigger(request, caller)
    body = parse_model(OffsetCommit, await read_json(request))
    if body.topic not in config.topics:
        raise InvalidInput(
            "topic",
            f"trigger {path} does not consume {body.topic!r}; its topics are "
            f"{', '.join(config.topics)}",
        )
    resource = await _resource(request, caller, config)
    async with _brokers(resource):
        from gateway.listeners.kafka import commit_offsets

        await commit_offsets(resource, config.group_id, body.topic, body.partition, body.offset)
    async with store_of(request).transaction() as tx:
        await audit.record(
            tx, caller.identity, caller.workspace_id, f"{DOMAIN}.commit_offsets", path,
            action="update", parameters=body.model_dump(),
        )  # fmt: skip
    return JSONResponse(
        f"Committed offset {body.offset} of {body.topic}[{body.partition}] for group "
        f"{config.group_id}"
    )


async def reset(request: Request, caller: Caller) -> Response:
    """Commit the beginning of every partition of the trigger's topics; the offsets committed."""
    path, config = await _trigger(request, caller)
    resource = await _resource(request, caller, config)
    async with _brokers(resource):
        from gateway.listeners.kafka import reset_offsets

        committed = await reset_offsets(resource, config.group_id, config.topics)
    offsets = [
        {"topic": one.topic, "partition": one.partition, "offset": one.offset} for one in committed
    ]
    async with store_of(request).transaction() as tx:
        await audit.record(
            tx, caller.identity, caller.workspace_id, f"{DOMAIN}.reset_offsets", path,
            action="update", parameters={"partitions": len(offsets)},
        )  # fmt: skip
    return JSONResponse(offsets)


PREFIX = f"/w/{{workspace}}/{DOMAIN}"
routes = [
    Route(f"{PREFIX}/commit_offsets/{{path:path}}", in_workspace(commit), methods=["POST"]),
    Route(f"{PREFIX}/reset_offsets/{{path:path}}", in_workspace(reset), methods=["POST"]),
]

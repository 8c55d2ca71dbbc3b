"""GcpPullListener's acking over a scripted subscriber: acks after the commit, nacks, deadline
extension while in flight, `auto_acknowledge_msg`, and pull errors.

`ScriptedSubscriber` stands in for the asynchronous Pub/Sub clients: the test hands it the pulls
to return and reads the calls it got.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Any, cast

import pytest
from google.api_core import exceptions as google_errors
from google.pubsub_v1 import types

from gateway.listeners.base import Batch
from gateway.listeners.gcp import GcpOptions, GcpPullListener, PubSubClients, PubSubError
from gateway.listeners.gcp_config import GcpResource
from gateway.listeners.lease import Lease, TriggerRef

PROJECT = "acme"
SUBSCRIPTION = f"projects/{PROJECT}/subscriptions/orders-gw"
TOPIC = f"projects/{PROJECT}/topics/orders"


class ScriptedSubscriber:
    """The subscriber and publisher calls the listener makes, driven by the test."""

    def __init__(self, ack_deadline_s: int = 30) -> None:
        self.pulls: asyncio.Queue[list[types.ReceivedMessage] | Exception] = asyncio.Queue()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.subscription = types.Subscription(
            name=SUBSCRIPTION, topic=TOPIC, ack_deadline_seconds=ack_deadline_s
        )

    async def get_topic(self, **kwargs: Any) -> types.Topic:
        return types.Topic(name=kwargs["topic"])

    async def get_subscription(self, **kwargs: Any) -> types.Subscription:
        return self.subscription

    async def pull(self, **kwargs: Any) -> types.PullResponse:
        self.calls.append(("pull", kwargs))
        answer = await self.pulls.get()
        if isinstance(answer, Exception):
            raise answer
        return types.PullResponse(received_messages=answer)

    async def acknowledge(self, **kwargs: Any) -> None:
        self.calls.append(("acknowledge", kwargs))

    async def modify_ack_deadline(self, **kwargs: Any) -> None:
        self.calls.append(("modify", kwargs))

    def made(self, name: str) -> list[dict[str, Any]]:
        """The arguments of every call of `name`."""
        return [kwargs for called, kwargs in self.calls if called == name]


def message(n: int) -> types.ReceivedMessage:
    """A pulled message."""
    return types.ReceivedMessage(
        ack_id=f"ack-{n}", message=types.PubsubMessage(data=f"m{n}".encode(), message_id=str(n))
    )


def listener_of(
    scripted: ScriptedSubscriber, options: GcpOptions | None = None, **row: Any
) -> GcpPullListener:
    """A listener of an existing pull subscription, on the scripted clients."""
    columns = {
        "gcp_resource_path": "u/ops/gcloud",
        "topic_id": "orders",
        "subscription_id": "orders-gw",
        "subscription_mode": "existing",
        **row,
    }
    lease = Lease(TriggerRef("gcp", "acme", "u/ops/orders"), "gw-a", MappingProxyType(columns))

    async def resources(workspace_id: str, path: str) -> Any:
        return {"project_id": PROJECT, "emulator_host": "unused:1"}

    async def open_clients(resource: GcpResource) -> PubSubClients:
        return PubSubClients(cast(Any, scripted), cast(Any, scripted), [])

    return GcpPullListener(lease, resources, options or GcpOptions(), open_clients)


@asynccontextmanager
async def consuming(listener: GcpPullListener) -> AsyncIterator[AsyncIterator[Batch]]:
    """The connected listener's stream, closed at the end."""
    await listener.connect()
    stream = listener.consume()
    try:
        yield stream
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
        await listener.close()


async def test_ack_acknowledges_the_batch_once_after_the_commit() -> None:
    scripted = ScriptedSubscriber()
    listener = listener_of(scripted, GcpOptions(max_messages=50, pull_timeout_s=7))
    scripted.pulls.put_nowait([])
    scripted.pulls.put_nowait([message(1), message(2)])

    async with consuming(listener) as stream:
        batch = await anext(stream)
        assert scripted.made("acknowledge") == []
        await listener.ack(batch)
        await listener.ack(batch)
        await listener.nack(batch)

    assert scripted.made("pull")[0] == {
        "subscription": SUBSCRIPTION,
        "max_messages": 50,
        "timeout": 7,
    }
    assert [event.dedup_key for event in batch.events] == ["1", "2"]
    assert scripted.made("acknowledge") == [
        {"subscription": SUBSCRIPTION, "ack_ids": ["ack-1", "ack-2"]}
    ]
    assert scripted.made("modify") == []


async def test_nack_sets_the_deadline_to_zero_once() -> None:
    scripted = ScriptedSubscriber()
    listener = listener_of(scripted)
    scripted.pulls.put_nowait([message(1)])

    async with consuming(listener) as stream:
        batch = await anext(stream)
        await listener.nack(batch)
        await listener.ack(batch)

    assert scripted.made("modify") == [
        {"subscription": SUBSCRIPTION, "ack_ids": ["ack-1"], "ack_deadline_seconds": 0}
    ]
    assert scripted.made("acknowledge") == []


async def test_the_deadline_is_extended_while_the_batch_is_in_flight() -> None:
    scripted = ScriptedSubscriber(ack_deadline_s=30)
    listener = listener_of(scripted, GcpOptions(extend_every_s=0.01))
    scripted.pulls.put_nowait([message(1)])

    async with consuming(listener) as stream:
        batch = await anext(stream)
        await asyncio.sleep(0.08)
        extended = len(scripted.made("modify"))
        await listener.ack(batch)
        await asyncio.sleep(0.04)

    assert extended >= 3
    assert len(scripted.made("modify")) == extended
    assert {
        (tuple(call["ack_ids"]), call["ack_deadline_seconds"]) for call in scripted.made("modify")
    } == {(("ack-1",), 30)}


async def test_the_deadline_comes_from_the_trigger_else_the_subscription() -> None:
    from_subscription = listener_of(ScriptedSubscriber(ack_deadline_s=45))
    from_trigger = listener_of(ScriptedSubscriber(ack_deadline_s=45), ack_deadline=120)

    for listener in (from_subscription, from_trigger):
        await listener.connect()
        await listener.close()

    assert from_subscription.ack_deadline_s == 45
    assert from_trigger.ack_deadline_s == 120


async def test_without_auto_acknowledge_nothing_is_acknowledged() -> None:
    scripted = ScriptedSubscriber()
    listener = listener_of(scripted, auto_acknowledge_msg=False)
    scripted.pulls.put_nowait([message(1)])

    async with consuming(listener) as stream:
        batch = await anext(stream)
        await listener.ack(batch)

    assert scripted.made("acknowledge") == []
    assert batch.events[0].info["ack_id"] == "ack-1"


async def test_pull_timeouts_are_retried_and_other_errors_raised() -> None:
    scripted = ScriptedSubscriber()
    listener = listener_of(scripted)
    scripted.pulls.put_nowait(google_errors.DeadlineExceeded("no message"))  # type: ignore[no-untyped-call]
    scripted.pulls.put_nowait(google_errors.PermissionDenied("not a subscriber"))  # type: ignore[no-untyped-call]

    async with consuming(listener) as stream:
        with pytest.raises(PubSubError, match=f"cannot pull from subscription {SUBSCRIPTION}"):
            await anext(stream)

    assert len(scripted.made("pull")) == 2

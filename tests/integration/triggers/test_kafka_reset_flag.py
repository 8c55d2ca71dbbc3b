"""A Kafka trigger's `reset_offset` is applied once: its holder clears the flag in the row."""

from __future__ import annotations

from gateway.listeners.kafka import clear_reset_offset
from gateway.store import Store

from .support import add_trigger, claim, read_trigger, set_server_id


async def test_the_holder_clears_the_flag(store: Store) -> None:
    trigger = await add_trigger(store, "rewound", kind="kafka", reset_offset=True)
    lease = await claim(store, trigger, "gw-a")

    await clear_reset_offset(store, lease)

    assert (await read_trigger(store, trigger))["reset_offset"] is False


async def test_an_instance_that_lost_the_row_leaves_the_flag_alone(store: Store) -> None:
    trigger = await add_trigger(store, "taken", kind="kafka", reset_offset=True)
    lease = await claim(store, trigger, "gw-a")
    await set_server_id(store, trigger, "gw-b")

    await clear_reset_offset(store, lease)

    assert (await read_trigger(store, trigger))["reset_offset"] is True

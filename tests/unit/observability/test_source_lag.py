"""Source lag read on demand: cached for a while, unknown (with the reason) when unreadable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from gateway.clock import FakeClock
from gateway.listeners.lease import TriggerRef
from gateway.observability.source_lag import LagProbe, SourceLag
from gateway.store import Row, Store

ORDERS = TriggerRef("kafka", "ws", "u/alice/orders")
SLOT = TriggerRef("postgres", "ws", "u/alice/changes")
FEED = TriggerRef("websocket", "ws", "u/alice/feed")


class TriggerRows:
    """Just enough of a store to answer `list_<kind>_triggers`, counting the queries."""

    dialect = "sqlite"

    def __init__(self, *triggers: TriggerRef) -> None:
        self.triggers = triggers
        self.queries: list[tuple[str, str]] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[TriggerRows]:
        yield self

    async def fetch_all(self, query: str, **params: Any) -> list[Row]:
        self.queries.append((query, params["workspace_id"]))
        kind = query.removeprefix("list_").removesuffix("_triggers")
        return [
            {"path": t.path, "marker": t.path}
            for t in self.triggers
            if t.kind == kind and t.workspace_id == params["workspace_id"]
        ]


class Source:
    """Lag readers whose answers the test sets; counts the reads."""

    def __init__(self) -> None:
        self.lag: dict[TriggerRef, int] = {}
        self.failure: Exception | None = None
        self.reads = 0

    async def read(self, store: Store, trigger: TriggerRef, row: Mapping[str, Any]) -> SourceLag:
        self.reads += 1
        assert row["marker"] == trigger.path
        if self.failure is not None:
            raise self.failure
        return SourceLag("messages", self.lag[trigger])


def probe_of(
    source: Source, store: TriggerRows, clock: FakeClock, timeout_s: float = 5.0
) -> LagProbe:
    readers = {"kafka": source.read, "postgres": source.read}
    return LagProbe(store, ttl_s=10, timeout_s=timeout_s, clock=clock, readers=readers)


async def test_answers_are_cached_for_the_ttl_then_read_again() -> None:
    source, clock = Source(), FakeClock()
    store = TriggerRows(ORDERS)
    probe = probe_of(source, store, clock)
    source.lag[ORDERS] = 7
    assert await probe.lags([ORDERS]) == {ORDERS: SourceLag("messages", 7)}
    source.lag[ORDERS] = 9
    await clock.advance(9.9)
    assert (await probe.lags([ORDERS]))[ORDERS].value == 7
    await clock.advance(0.1)
    assert (await probe.lags([ORDERS]))[ORDERS].value == 9
    assert source.reads == 2


async def test_rows_are_read_once_per_kind_and_workspace_and_kinds_without_lag_are_skipped() -> (
    None
):
    source, clock = Source(), FakeClock()
    other = TriggerRef("kafka", "ws", "u/alice/refunds")
    store = TriggerRows(ORDERS, other, SLOT, FEED)
    source.lag.update({ORDERS: 1, other: 2, SLOT: 3})
    found = await probe_of(source, store, clock).lags([ORDERS, other, SLOT, FEED])
    assert {trigger: lag.value for trigger, lag in found.items()} == {ORDERS: 1, other: 2, SLOT: 3}
    assert sorted(store.queries) == [
        ("list_kafka_triggers", "ws"),
        ("list_postgres_triggers", "ws"),
    ]


async def test_a_failing_source_gives_an_unknown_lag_with_the_reason() -> None:
    source, clock = Source(), FakeClock()
    source.failure = ConnectionRefusedError("broker down")
    found = await probe_of(source, TriggerRows(ORDERS), clock).lags([ORDERS])
    assert found[ORDERS] == SourceLag("messages", None, "ConnectionRefusedError: broker down")


async def test_a_missing_client_library_is_named() -> None:
    source, clock = Source(), FakeClock()
    source.failure = ModuleNotFoundError("no module", name="aiokafka")
    found = await probe_of(source, TriggerRows(ORDERS), clock).lags([ORDERS])
    assert found[ORDERS].error == "aiokafka is not installed (gateway[kafka])"


async def test_a_source_that_does_not_answer_in_time_gives_an_unknown_lag() -> None:
    clock = FakeClock()

    async def hangs(store: Store, trigger: TriggerRef, row: Mapping[str, Any]) -> SourceLag:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    probe = LagProbe(
        TriggerRows(ORDERS),
        ttl_s=10,
        timeout_s=0.01,
        clock=clock,
        readers={"kafka": hangs},
    )
    found = await probe.lags([ORDERS])
    assert found[ORDERS] == SourceLag("messages", None, "the source did not answer within 0.01s")


async def test_a_trigger_deleted_since_it_was_listed_has_an_unknown_lag() -> None:
    source, clock = Source(), FakeClock()
    found = await probe_of(source, TriggerRows(), clock).lags([ORDERS])
    assert found[ORDERS] == SourceLag("messages", None, "the trigger no longer exists")
    assert source.reads == 0

"""Batches of one trigger submitted at once (a pipelined listener) pass the fence one at a time:
on PostgreSQL the fence share-locks the trigger row until the commit, and share locks that kept
overlapping would leave the lease's own ping waiting for ever."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from gateway.store import CopyingTransaction, Row, Store, Transaction
from gateway.triggers.pipeline import TriggerJobSink

from ..support import add_scripts
from .support import add_trigger, claim, frame

ECHO = "def main(msg: str):\n    return msg\n"


class _NotingTransaction:
    """A transaction that notes, in `steps`, when it checks the fence."""

    def __init__(self, tx: Transaction, name: int, steps: list[tuple[str, int]]) -> None:
        self._tx = tx
        self._name = name
        self._steps = steps

    async def execute(self, query: str, **params: Any) -> int:
        return await self._tx.execute(query, **params)

    async def fetch_one(self, query: str, **params: Any) -> Row | None:
        if query.startswith("fence_"):
            self._steps.append(("fence", self._name))
        return await self._tx.fetch_one(query, **params)

    async def fetch_all(self, query: str, **params: Any) -> list[Row]:
        return await self._tx.fetch_all(query, **params)

    def notify(self, channel: str, payload: str = "") -> None:
        self._tx.notify(channel, payload)

    async def run_script(self, sql: str) -> None:
        await self._tx.run_script(sql)

    async def copy_rows(self, query: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._copying().copy_rows(query, rows)

    def copy_field(self, value: Any) -> Any:
        return self._copying().copy_field(value)

    async def copy_fields(
        self, query: str, rows: Iterable[Sequence[Any]], *, new_only: bool = False
    ) -> bool:
        return await self._copying().copy_fields(query, rows, new_only=new_only)

    def _copying(self) -> CopyingTransaction:
        assert isinstance(self._tx, CopyingTransaction), "both stores write rows in bulk"
        return self._tx


class NotingStore:
    """The test store, noting when each transaction checks the fence and when it commits."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.dialect = store.dialect
        self.notifications = store.notifications
        self.steps: list[tuple[str, int]] = []
        self._names = itertools.count()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        name = next(self._names)
        async with self._store.transaction() as tx:
            yield _NotingTransaction(tx, name, self.steps)
        self.steps.append(("commit", name))

    async def close(self) -> None:
        """The real store stays open: the fixture closes it."""


async def test_each_batch_commits_before_the_next_one_checks_the_fence(store: Store) -> None:
    await add_scripts(store, echo=ECHO)
    trigger = await add_trigger(store, "feed")
    lease = await claim(store, trigger)
    noting = NotingStore(store)
    sink = TriggerJobSink(noting)
    batches = [[frame(f"{b}-{n}", f"m-{b}-{n}") for n in range(50)] for b in range(4)]

    results = await asyncio.gather(*(sink.submit(lease, batch) for batch in batches))

    assert [len(ids) for ids in results] == [50] * 4
    assert len(noting.steps) == 8
    # Fences and commits pair up: no batch checks the fence while another's lock is held.
    for fence, commit in zip(noting.steps[::2], noting.steps[1::2], strict=True):
        assert fence[0] == "fence"
        assert commit == ("commit", fence[1])

"""The one seam between the gateway and its database: a `Store` running named queries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from gateway.store.notify import Broadcaster
from gateway.store.values import Row

if TYPE_CHECKING:
    from gateway.secrets.keeper import SecretKeeper


class Transaction(Protocol):
    """Named queries inside one database transaction."""

    async def execute(self, query: str, **params: Any) -> int:
        """Run a query, return the number of rows it touched."""
        ...

    async def fetch_one(self, query: str, **params: Any) -> Row | None:
        """Run a query, return its first row or None."""
        ...

    async def fetch_all(self, query: str, **params: Any) -> list[Row]:
        """Run a query, return every row."""
        ...

    def notify(self, channel: str, payload: str = "") -> None:
        """Publish on `channel` once (and only if) this transaction commits."""
        ...

    async def run_script(self, sql: str) -> None:
        """Run a multi-statement SQL script without parameters (migrations)."""
        ...


@runtime_checkable
class CopyingTransaction(Transaction, Protocol):
    """A transaction that can also write many rows into one table at once: the named query is a
    COPY on PostgreSQL and a one-row INSERT run once per row (executemany) on SQLite."""

    async def copy_rows(self, query: str, rows: Iterable[Sequence[Any]]) -> None:
        """Write `rows` (tuples in the column order of the named query) into its table."""
        ...

    def copy_field(self, value: Any) -> Any:
        """`value` (None, a bool, number, text, UUID, timestamp or list of texts) as a field of
        `copy_fields`: COPY text on PostgreSQL, the bound parameter on SQLite."""
        ...

    async def copy_fields(
        self, query: str, rows: Iterable[Sequence[Any]], *, new_only: bool = False
    ) -> bool:
        """Write rows of fields made by `copy_field` (a batch encodes what its rows share once).

        With `new_only`, write all the rows or none: False, and nothing written, when one of
        them has a unique key the table holds already. True otherwise.
        """
        ...


class Store(Protocol):
    """A database behind named queries; `dialect` is "sqlite" or "postgresql"; `secrets`
    seals and opens secret values (None until the master key is loaded); `writes_in_flight` is
    how many `write` calls a caller batching its writes (group commit) should keep going at
    once."""

    dialect: str
    writes_in_flight: int
    notifications: Broadcaster
    secrets: SecretKeeper | None

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """Open a transaction; it commits when the block exits normally."""
        ...

    async def write(self, query: str, **params: Any) -> list[Row]:
        """Run a named write as a transaction of its own; the rows it returns.

        On PostgreSQL the query is one statement, sent in one round trip (no BEGIN and COMMIT
        exchanges); on SQLite its statements run in order and the last one's rows are returned.
        Either way `pg_notify(channel, payload)` in the query publishes once it committed.
        """
        ...

    async def close(self) -> None:
        """Close every connection; idempotent."""
        ...


async def fetch_one(store: Store, query: str, **params: Any) -> Row | None:
    """Run one read query in its own transaction."""
    async with store.transaction() as tx:
        return await tx.fetch_one(query, **params)


async def fetch_all(store: Store, query: str, **params: Any) -> list[Row]:
    """Run one read query in its own transaction, returning every row."""
    async with store.transaction() as tx:
        return await tx.fetch_all(query, **params)


async def execute(store: Store, query: str, **params: Any) -> int:
    """Run one write query in its own transaction."""
    async with store.transaction() as tx:
        return await tx.execute(query, **params)


async def iterate_channel(store: Store, channel: str) -> AsyncIterator[str]:
    """Yield the payloads published on `channel` from now on."""
    async with store.notifications.subscribe(channel) as queue:
        while True:
            yield await queue.get()

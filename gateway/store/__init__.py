"""The only place that knows SQL: schema, dialects, migrations and named queries."""

from __future__ import annotations

from gateway.errors import ConfigError
from gateway.store.base import (
    CopyingTransaction,
    Store,
    Transaction,
    execute,
    fetch_all,
    fetch_one,
)
from gateway.store.values import Json, Row


async def open_store(url: str, pool_size: int = 10) -> Store:
    """Open the store named by `url` (`sqlite:///file.db` or `postgresql://...`)."""
    if url.startswith("sqlite://"):
        from gateway.store.sqlite import SqliteStore

        return await SqliteStore.open(url)
    if url.startswith(("postgresql://", "postgres://")):
        from gateway.store.postgresql import PostgresStore

        return await PostgresStore.open(url, pool_size=pool_size)
    raise ConfigError(f"unknown database URL {url!r}: use sqlite:///path.db or postgresql://...")


__all__ = [
    "CopyingTransaction",
    "Json",
    "Row",
    "Store",
    "Transaction",
    "execute",
    "fetch_all",
    "fetch_one",
    "open_store",
]

"""The PostgreSQL cluster the CDC tests stream from, and what each test makes in it.

The cluster is `GATEWAY_TEST_POSTGRES_CDC` (default ``postgresql://postgres@127.0.0.1:25432/
postgres``, started by `scripts/services/postgres_cdc.sh`) and must run with
`wal_level=logical`. `cdc_source()` creates two tables, a publication of both and a slot, every
name unique to the test, and drops them at the end (ending any connection still streaming the
slot): `<prefix>_full` has REPLICA IDENTITY FULL, `<prefix>_plain` the default identity.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from gateway.listeners.base import Batch, Listener
from gateway.listeners.lease import Lease, TriggerRef
from gateway.listeners.postgres import listener_factory, stream_opener
from gateway.store import Json, Store
from gateway.store.trigger_tables import COLUMN_DEFAULTS, TRIGGER_TABLES
from gateway.workspaces import ensure_workspace

from ...conftest import service_missing
from ..support import OWNER, WS
from .brokers import store_with_resources

CDC_URL = os.environ.get(
    "GATEWAY_TEST_POSTGRES_CDC", "postgresql://postgres@127.0.0.1:25432/postgres"
)
RESOURCE_PATH = "u/alice/cdc"
STATUS_INTERVAL_S = 0.2
"""How often the tests' streams repeat their confirmed position (10 s in production)."""

_COLUMNS = """
    id int PRIMARY KEY,
    amount numeric(12, 2),
    at timestamptz,
    doc jsonb,
    tags text[],
    counts int[],
    ok boolean,
    note text
"""


def cdc_resource() -> dict[str, Any]:
    """The `postgresql` resource value of the CDC cluster."""
    parts = urlsplit(CDC_URL)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "password": parts.password or "",
        "dbname": parts.path.lstrip("/") or "postgres",
        "sslmode": "disable",
    }


async def connect() -> psycopg.AsyncConnection[Any]:
    """An autocommit connection to the CDC cluster; skips (fails under CI) when it is absent."""
    try:
        conn = await psycopg.AsyncConnection.connect(CDC_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        service_missing(f"PostgreSQL for CDC at {CDC_URL}", str(exc).strip())
    cursor = await conn.execute("SHOW wal_level")
    level = await cursor.fetchone()
    if level is None or level[0] != "logical":
        await conn.close()
        service_missing(f"PostgreSQL for CDC at {CDC_URL}", f"wal_level is {level}, not logical")
    return conn


def unique(prefix: str) -> str:
    """A name no other test or run uses (valid as a slot name)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True, slots=True)
class CdcSource:
    """A test's tables, publication and slot, and a connection to change them."""

    conn: psycopg.AsyncConnection[Any]
    prefix: str

    @property
    def full(self) -> str:
        """The table with REPLICA IDENTITY FULL."""
        return f"{self.prefix}_full"

    @property
    def plain(self) -> str:
        """The table with the default replica identity (its primary key)."""
        return f"{self.prefix}_plain"

    @property
    def publication(self) -> str:
        """The publication of both tables."""
        return f"{self.prefix}_pub"

    @property
    def slot(self) -> str:
        """The test's pgoutput slot."""
        return f"{self.prefix}_slot"

    def trigger_columns(self) -> dict[str, Any]:
        """The config columns of a trigger that streams this source."""
        return {
            "postgres_resource_path": RESOURCE_PATH,
            "replication_slot_name": self.slot,
            "publication_name": self.publication,
        }

    def lease(self, **row: Any) -> Lease:
        """A lease on a new trigger streaming this source."""
        trigger = TriggerRef("postgres", WS, f"u/{OWNER.username}/{unique('cdc')}")
        columns = {"path": trigger.path, **self.trigger_columns(), **row}
        return Lease(trigger, "test-instance", MappingProxyType(columns))

    async def run(self, *statements: str | sql.Composed) -> None:
        """Run the statements in one transaction; `{full}` and `{plain}` name the tables."""
        async with self.conn.transaction():
            for statement in statements:
                await self.conn.execute(self._named(statement))

    async def lsn(self) -> int:
        """The server's current WAL position."""
        return await self._number("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")

    async def confirmed(self) -> int:
        """The slot's confirmed flush position."""
        return await self._number(
            "SELECT confirmed_flush_lsn - '0/0'::pg_lsn FROM pg_replication_slots"
            f" WHERE slot_name = '{self.slot}'"
        )

    async def _number(self, query: str) -> int:
        cursor = await self.conn.execute(query.encode())
        found = await cursor.fetchone()
        assert found is not None and found[0] is not None
        return int(found[0])

    def _named(self, statement: str | sql.Composed) -> str | sql.Composed:
        if not isinstance(statement, str):
            return statement
        # The names are made of [a-z0-9_]: no quoting is needed, and the statement's own braces
        # (arrays, JSON) stay as they are.
        return statement.replace("{full}", self.full).replace("{plain}", self.plain)


@asynccontextmanager
async def cdc_source() -> AsyncIterator[CdcSource]:
    """Fresh tables, publication and slot on the CDC cluster, dropped at the end."""
    conn = await connect()
    source = CdcSource(conn, unique("gwcdc"))
    try:
        await source.run(
            f"CREATE TABLE {{full}} ({_COLUMNS})",
            "ALTER TABLE {full} REPLICA IDENTITY FULL",
            f"CREATE TABLE {{plain}} ({_COLUMNS})",
            sql.SQL("CREATE PUBLICATION {} FOR TABLE {}, {}").format(
                sql.Identifier(source.publication),
                sql.Identifier(source.full),
                sql.Identifier(source.plain),
            ),
        )
        # After the publication: a slot decodes only what comes after its creation, and the
        # publication must exist at every position it decodes.
        await conn.execute(
            "SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", [source.slot]
        )
        yield source
    finally:
        await _drop(conn, source)
        await conn.close()


async def _drop(conn: psycopg.AsyncConnection[Any], source: CdcSource) -> None:
    for _ in range(100):
        await conn.execute(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
            " WHERE slot_name = %s AND active_pid IS NOT NULL",
            [source.slot],
        )
        try:
            await conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE slot_name = %s",
                [source.slot],
            )
            break
        except psycopg.errors.ObjectInUse:
            await asyncio.sleep(0.05)
    await conn.execute(
        sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(source.publication))
    )
    for table in (source.full, source.plain):
        await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))


@asynccontextmanager
async def resource_store(folder: Path) -> AsyncIterator[Store]:
    """A SQLite store with the test workspace and the CDC cluster's resource."""
    async with store_with_resources(
        folder, {RESOURCE_PATH: ("postgresql", cdc_resource())}
    ) as store:
        yield store


async def add_resource(store: Store) -> None:
    """Write the test workspace and the CDC cluster's resource into `store`."""
    async with store.transaction() as tx:
        await ensure_workspace(tx, WS, OWNER)
        await tx.execute(
            "upsert_resource",
            workspace_id=WS,
            path=RESOURCE_PATH,
            value=Json(cdc_resource()),
            description="",
            resource_type="postgresql",
            created_by=OWNER.username,
        )


async def add_trigger(store: Store, source: CdcSource, script: str) -> TriggerRef:
    """A postgres trigger of the test user on script `f/t/<script>`, written as the API does."""
    trigger = TriggerRef("postgres", WS, f"u/{OWNER.username}/{unique('cdc')}")
    table = TRIGGER_TABLES["postgres"]
    values: Mapping[str, Any] = {
        **{column: COLUMN_DEFAULTS.get(column) for column in table.writable_columns},
        **source.trigger_columns(),
        "path": trigger.path,
        "script_path": f"f/t/{script}",
        "is_flow": False,
        "workspace_id": WS,
        "edited_by": OWNER.username,
        "email": OWNER.email,
        "permissioned_as": OWNER.permissioned_as,
        "mode": "enabled",
    }
    async with store.transaction() as tx:
        await tx.execute(
            "upsert_postgres_trigger", **{k: v for k, v in values.items() if k != "edited_at"}
        )
    return trigger


def listener_on(store: Store, lease: Lease) -> Listener:
    """A PostgreSQL listener of `lease`, built as the runtime builds it, with a fast status."""
    return listener_factory(store, stream_opener(STATUS_INTERVAL_S))(lease)


@asynccontextmanager
async def streaming(listener: Listener) -> AsyncIterator[AsyncIterator[Batch]]:
    """The listener connected, its `consume` stream; closed at the end."""
    await listener.connect()
    stream = listener.consume()
    try:
        yield stream
    finally:
        if isinstance(stream, AsyncGenerator):
            await stream.aclose()
        await listener.close()

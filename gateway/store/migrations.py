"""Versioned schema migrations: `sql/migrations/<dialect>/NNNN_name.sql`, applied in order."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

from gateway.store.base import Store

logger = logging.getLogger(__name__)

_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>\w+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str


def available_migrations(dialect: str) -> list[Migration]:
    """Every migration shipped for `dialect`, oldest first."""
    folder = resources.files("gateway.store").joinpath("sql", "migrations", dialect)
    found = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match["version"]), match["name"], entry.read_text()))
    return sorted(found, key=lambda m: m.version)


async def migrate(store: Store) -> list[Migration]:
    """Apply the missing migrations in one transaction; return those applied.

    On PostgreSQL an advisory lock makes concurrent instances apply them once.
    """
    async with store.transaction() as tx:
        await tx.execute("lock_migrations")
        await tx.execute("create_migration_table")
        applied = {row["version"] for row in await tx.fetch_all("list_migrations")}
        pending = [m for m in available_migrations(store.dialect) if m.version not in applied]
        for migration in pending:
            logger.info(
                "applying migration %04d_%s",
                migration.version,
                migration.name,
                extra={"action": "migrate"},
            )
            await tx.run_script(migration.sql)
            await tx.execute("record_migration", version=migration.version, name=migration.name)
    return pending


async def pending_migrations(store: Store) -> list[Migration]:
    """The migrations not yet applied to this database."""
    async with store.transaction() as tx:
        await tx.execute("create_migration_table")
        applied = {row["version"] for row in await tx.fetch_all("list_migrations")}
    return [m for m in available_migrations(store.dialect) if m.version not in applied]

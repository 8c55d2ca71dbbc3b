"""The PostgreSQL CDC extras of the management API (reference 5.2): the replication slots and
publications of a `postgresql` resource's database, its version and whether it can stream.

All under `/w/{workspace}/postgres_triggers/`, where `{path}` is the resource path:

    GET    slot/list/{path}                          [{"slot_name", "active"}] (pgoutput slots)
    POST   slot/create/{path}                        {"name"}
    DELETE slot/delete/{path}                        {"name"}; ends the walsender streaming it
    GET    publication/list/{path}                   [name]
    GET    publication/get/{publication}/{path}      {"transaction_to_track", "table_to_track"?}
    POST   publication/create/{publication}/{path}   the same shape
    POST   publication/update/{publication}/{path}   the same shape
    DELETE publication/delete/{publication}/{path}
    GET    postgres/version/{path}                   the server version, a JSON string
    GET    is_valid_postgres_configuration/{path}    whether wal_level is logical

`table_to_track` is absent for a publication of all tables. Reading needs the
`postgres_triggers:read` scope and a resource the caller can see; changing needs
`postgres_triggers:write` and a resource the caller may write. Changes are audited as
`postgres_triggers.<slot|publication>.<create|update|delete>`. Each request opens one short
connection to the database (`admin_connection`), whose errors become 400, 403, 404 or 409.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection, sql
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.errors import NotFound
from gateway.http_routes.api import audit
from gateway.http_routes.api.auth import Caller, in_workspace
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.permissions import require_visible, require_writable
from gateway.http_routes.api.request_parsing import parse_model, read_json
from gateway.listeners.postgres_config import (
    FIRST_VERSION_WITH_ROW_FILTERS,
    OPERATIONS,
    PostgresResource,
    PublicationSpec,
    SchemaToTrack,
    TableToTrack,
    admin_connection,
    alter_publication_sql,
    check_publication_name,
    check_slot_name,
    create_publication_sql,
    parse_publication,
    parse_resource,
)
from gateway.resources import resource_value

DOMAIN: Final = "postgres_triggers"
DROP_SLOT_WAIT_S: Final = 5.0

# The database ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlotInfo:
    """A logical pgoutput slot of the resource's database."""

    slot_name: str
    active: bool


async def list_slots(resource: PostgresResource) -> list[SlotInfo]:
    """The logical pgoutput slots of the resource's database, by name."""
    async with admin_connection(resource, "name") as conn:
        cursor = await conn.execute(
            "SELECT slot_name, active FROM pg_replication_slots WHERE slot_type = 'logical'"
            " AND plugin = 'pgoutput' AND database = current_database() ORDER BY slot_name"
        )
        return [SlotInfo(row["slot_name"], bool(row["active"])) for row in await cursor.fetchall()]


async def create_slot(resource: PostgresResource, name: str) -> None:
    """Create logical slot `name` for pgoutput; `Conflict` when it exists."""
    async with admin_connection(resource, "name") as conn:
        await conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", [name])


async def drop_slot(resource: PostgresResource, name: str) -> None:
    """Drop slot `name`, ending the connection that streams it first; `NotFound` when absent."""
    async with admin_connection(resource, "name") as conn:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DROP_SLOT_WAIT_S
        while True:
            await conn.execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
                " WHERE slot_name = %s AND active_pid IS NOT NULL",
                [name],
            )
            try:
                await conn.execute("SELECT pg_drop_replication_slot(%s)", [name])
                return
            except psycopg.errors.ObjectInUse:
                # The ended walsender releases the slot as it exits.
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.05)


async def list_publications(resource: PostgresResource) -> list[str]:
    """The publications of the resource's database, by name."""
    async with admin_connection(resource, "publication") as conn:
        cursor = await conn.execute("SELECT pubname FROM pg_publication ORDER BY pubname")
        return [row["pubname"] for row in await cursor.fetchall()]


async def get_publication(resource: PostgresResource, name: str) -> PublicationSpec:
    """Publication `name` as operations and tables; `NotFound` when absent."""
    async with admin_connection(resource, "publication") as conn:
        cursor = await conn.execute(
            "SELECT oid, pubinsert, pubupdate, pubdelete, puballtables"
            " FROM pg_publication WHERE pubname = %s",
            [name],
        )
        publication = await cursor.fetchone()
        if publication is None:
            raise NotFound(f"publication {name!r} does not exist in {resource.describe()}")
        operations = tuple(op for op in OPERATIONS if publication[f"pub{op}"])
        if publication["puballtables"]:
            return PublicationSpec(transaction_to_track=operations)
        modern = conn.info.server_version >= FIRST_VERSION_WITH_ROW_FILTERS
        cursor = await conn.execute(
            _PUBLICATION_TABLES if modern else _PUBLICATION_TABLES_14, [publication["oid"]]
        )
        tables = await cursor.fetchall()
        whole: list[str] = []
        if modern:
            cursor = await conn.execute(_PUBLICATION_SCHEMAS, [publication["oid"]])
            whole = [row["schema_name"] for row in await cursor.fetchall()]
    by_schema: dict[str, list[TableToTrack]] = {schema: [] for schema in whole}
    for row in tables:
        if row["schema_name"] not in whole:
            by_schema.setdefault(row["schema_name"], []).append(
                TableToTrack(
                    table_name=row["table_name"],
                    columns_name=row["columns_name"],
                    where_clause=row["where_clause"],
                )
            )
    return PublicationSpec(
        transaction_to_track=operations,
        table_to_track=tuple(
            SchemaToTrack(schema_name=schema, table_to_track=tuple(tables))
            for schema, tables in by_schema.items()
        ),
    )


async def create_publication(resource: PostgresResource, name: str, spec: PublicationSpec) -> None:
    """Create publication `name` as `spec` describes; `Conflict` when it exists."""
    async with admin_connection(resource, "table_to_track") as conn:
        spec.check_server(conn.info.server_version)
        await _execute_one(conn, create_publication_sql(name, spec))


async def update_publication(resource: PostgresResource, name: str, spec: PublicationSpec) -> None:
    """Give publication `name` the tables and operations of `spec`, in one transaction.

    A publication that is or becomes `FOR ALL TABLES` is dropped and created again, which
    `ALTER PUBLICATION` cannot express; a stream reading it sees the new one from the next
    change on.
    """
    async with admin_connection(resource, "table_to_track") as conn:
        spec.check_server(conn.info.server_version)
        async with conn.transaction():
            cursor = await conn.execute(
                "SELECT puballtables FROM pg_publication WHERE pubname = %s", [name]
            )
            existing = await cursor.fetchone()
            if existing is None:
                raise NotFound(f"publication {name!r} does not exist in {resource.describe()}")
            if spec.all_tables or existing["puballtables"]:
                await conn.execute(sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(name)))
                await _execute_one(conn, create_publication_sql(name, spec))
            else:
                for statement in alter_publication_sql(name, spec):
                    await _execute_one(conn, statement)


async def drop_publication(resource: PostgresResource, name: str) -> None:
    """Drop publication `name`; `NotFound` when absent."""
    async with admin_connection(resource, "publication") as conn:
        await conn.execute(sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(name)))


async def server_version(resource: PostgresResource) -> str:
    """The server's version, as `SHOW server_version` gives it."""
    async with admin_connection(resource, "resource") as conn:
        cursor = await conn.execute("SELECT current_setting('server_version') AS version")
        found = await cursor.fetchone()
    return str(found["version"]) if found else ""


async def has_logical_wal_level(resource: PostgresResource) -> bool:
    """Whether the server writes the WAL logical decoding needs (`wal_level = logical`)."""
    async with admin_connection(resource, "resource") as conn:
        cursor = await conn.execute("SELECT current_setting('wal_level') = 'logical' AS ok")
        found = await cursor.fetchone()
    return bool(found and found["ok"])


_PUBLICATION_TABLES: Final = """
SELECT n.nspname AS schema_name, c.relname AS table_name,
       (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
         WHERE a.attrelid = r.prrelid AND a.attnum = ANY (r.prattrs::int2[])) AS columns_name,
       pg_get_expr(r.prqual, r.prrelid) AS where_clause
  FROM pg_publication_rel r
  JOIN pg_class c ON c.oid = r.prrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE r.prpubid = %s
 ORDER BY 1, 2
"""
_PUBLICATION_TABLES_14: Final = """
SELECT n.nspname AS schema_name, c.relname AS table_name,
       NULL::text[] AS columns_name, NULL::text AS where_clause
  FROM pg_publication_rel r
  JOIN pg_class c ON c.oid = r.prrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE r.prpubid = %s
 ORDER BY 1, 2
"""
_PUBLICATION_SCHEMAS: Final = """
SELECT n.nspname AS schema_name
  FROM pg_publication_namespace p JOIN pg_namespace n ON n.oid = p.pnnspid
 WHERE p.pnpubid = %s
 ORDER BY 1
"""


async def _execute_one(conn: AsyncConnection[Any], statement: sql.Composed) -> None:
    """Run one statement with the extended protocol, which refuses a second one."""
    await conn.execute(statement, binary=True)


# The endpoints --------------------------------------------------------------------------------


class SlotName(BaseModel):
    """The body of the slot endpoints."""

    model_config = ConfigDict(extra="ignore")

    name: str


async def _resource(request: Request, caller: Caller, action: str) -> PostgresResource:
    """The resource named by the request's path, which the caller may read (or change)."""
    path = request.path_params["path"]
    caller.require_scope(DOMAIN, action)
    if action == "write":
        require_writable(caller, path)
    else:
        require_visible(caller, path, "resource")
    return parse_resource(await resource_value(store_of(request), caller.workspace_id, path))


async def _slot_name(request: Request) -> str:
    return check_slot_name(parse_model(SlotName, await read_json(request)).name)


def _publication_name(request: Request) -> str:
    return check_publication_name(request.path_params["publication"])


async def _audit(
    request: Request, caller: Caller, thing: str, action: audit.ActionKind, name: str
) -> None:
    async with store_of(request).transaction() as tx:
        await audit.record(
            tx, caller.identity, caller.workspace_id, f"{DOMAIN}.{thing}.{action}",
            request.path_params["path"], action=action, parameters={"name": name},
        )  # fmt: skip


async def list_slots_endpoint(request: Request, caller: Caller) -> Response:
    """The logical pgoutput slots of the resource's database."""
    slots = await list_slots(await _resource(request, caller, "read"))
    return JSONResponse([{"slot_name": slot.slot_name, "active": slot.active} for slot in slots])


async def create_slot_endpoint(request: Request, caller: Caller) -> Response:
    """Create a logical slot for pgoutput."""
    resource = await _resource(request, caller, "write")
    name = await _slot_name(request)
    await create_slot(resource, name)
    await _audit(request, caller, "slot", "create", name)
    return PlainTextResponse(f"Slot {name} created")


async def delete_slot_endpoint(request: Request, caller: Caller) -> Response:
    """Drop a slot, ending the connection that streams it first."""
    resource = await _resource(request, caller, "write")
    name = await _slot_name(request)
    await drop_slot(resource, name)
    await _audit(request, caller, "slot", "delete", name)
    return PlainTextResponse(f"Slot {name} deleted")


async def list_publications_endpoint(request: Request, caller: Caller) -> Response:
    """The publications of the resource's database."""
    return JSONResponse(await list_publications(await _resource(request, caller, "read")))


async def get_publication_endpoint(request: Request, caller: Caller) -> Response:
    """A publication's operations and tables."""
    resource = await _resource(request, caller, "read")
    spec = await get_publication(resource, _publication_name(request))
    return JSONResponse(publication_json(spec))


async def create_publication_endpoint(request: Request, caller: Caller) -> Response:
    """Create a publication."""
    resource = await _resource(request, caller, "write")
    name = _publication_name(request)
    await create_publication(resource, name, parse_publication(await read_json(request)))
    await _audit(request, caller, "publication", "create", name)
    return PlainTextResponse(f"Publication {name} created")


async def update_publication_endpoint(request: Request, caller: Caller) -> Response:
    """Replace a publication's tables and operations."""
    resource = await _resource(request, caller, "write")
    name = _publication_name(request)
    await update_publication(resource, name, parse_publication(await read_json(request)))
    await _audit(request, caller, "publication", "update", name)
    return PlainTextResponse(f"Publication {name} updated")


async def delete_publication_endpoint(request: Request, caller: Caller) -> Response:
    """Drop a publication."""
    resource = await _resource(request, caller, "write")
    name = _publication_name(request)
    await drop_publication(resource, name)
    await _audit(request, caller, "publication", "delete", name)
    return PlainTextResponse(f"Publication {name} deleted")


async def version_endpoint(request: Request, caller: Caller) -> Response:
    """The server's version."""
    return JSONResponse(await server_version(await _resource(request, caller, "read")))


async def is_valid_configuration_endpoint(request: Request, caller: Caller) -> Response:
    """Whether the server can stream changes (`wal_level = logical`)."""
    return JSONResponse(await has_logical_wal_level(await _resource(request, caller, "read")))


def publication_json(spec: PublicationSpec) -> dict[str, Any]:
    """A publication as the API shows it: `table_to_track` absent for all tables, and the
    optional table fields only when set."""
    shown: dict[str, Any] = {"transaction_to_track": list(spec.transaction_to_track)}
    if not spec.all_tables:
        shown["table_to_track"] = [
            {
                "schema_name": schema.schema_name,
                "table_to_track": [
                    table.model_dump(exclude_none=True) for table in schema.table_to_track
                ],
            }
            for schema in spec.table_to_track
        ]
    return shown


PREFIX = "/w/{workspace}/postgres_triggers"
RESOURCE = "{path:path}"
PUBLICATION = "{publication}/{path:path}"
routes = [
    Route(f"{PREFIX}/{route}", in_workspace(handler), methods=[method])
    for method, route, handler in (
        ("GET", f"slot/list/{RESOURCE}", list_slots_endpoint),
        ("POST", f"slot/create/{RESOURCE}", create_slot_endpoint),
        ("DELETE", f"slot/delete/{RESOURCE}", delete_slot_endpoint),
        ("GET", f"publication/list/{RESOURCE}", list_publications_endpoint),
        ("GET", f"publication/get/{PUBLICATION}", get_publication_endpoint),
        ("POST", f"publication/create/{PUBLICATION}", create_publication_endpoint),
        ("POST", f"publication/update/{PUBLICATION}", update_publication_endpoint),
        ("DELETE", f"publication/delete/{PUBLICATION}", delete_publication_endpoint),
        ("GET", f"postgres/version/{RESOURCE}", version_endpoint),
        ("GET", f"is_valid_postgres_configuration/{RESOURCE}", is_valid_configuration_endpoint),
    )
]

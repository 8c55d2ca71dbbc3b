"""What a PostgreSQL CDC trigger needs before it can stream: its config, its `postgresql`
resource, the libpq parameters both map to, and the publication it reads.

- `validate_trigger(row)`: the `postgres_trigger` columns, checked when a trigger is written;
- `parse_resource(value)`: a `postgresql` resource value, Windmill's shape::

      {"host", "port"?: 5432, "user", "password"?, "dbname",
       "sslmode"?: "disable" | "" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full",
       "root_certificate_pem"?}

  `""` and `allow` mean `prefer`. `prefer` and `require` encrypt without checking the server's
  certificate; `verify-ca` checks its chain against `root_certificate_pem` (required then);
  `verify-full` checks the chain and the host name, against the PEM or else the system's CAs;
- `connection_params(resource)`: the libpq parameters, with the PEM in a private temporary file
  for as long as the connection attempt needs it;
- `admin_connection(resource, field)`: a short-lived connection for the management API and the
  trigger status, whose database errors become `Conflict`, `NotFound`, `Forbidden` or
  `InvalidInput`;
- `parse_publication(value)` and `create_publication_sql` / `alter_publication_sql`: a
  publication as the management API describes it (`transaction_to_track`, `table_to_track`)
  and the statements that make it so.

Every validator raises `InvalidInput` naming the field.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Final, Literal, Self, TypeVar

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.errors import Conflict, Forbidden, GatewayError, InvalidInput, NotFound

SLOT_NAME: Final = re.compile(r"^[a-z0-9_]{1,63}$")
"""PostgreSQL's rule for replication slot names."""
MAX_IDENTIFIER_BYTES: Final = 63
CONNECT_TIMEOUT_S: Final = 10
FIRST_VERSION_WITH_ROW_FILTERS: Final = 150000
"""Row filters, column lists and whole-schema publications need PostgreSQL 15."""
OPERATIONS: Final = ("insert", "update", "delete")
DEFAULT_PUBLISH: Final = "insert, update, delete, truncate"
"""What a publication publishes when its operations are not given."""

_M = TypeVar("_M", bound=BaseModel)
SslMode = Literal["disable", "prefer", "require", "verify-ca", "verify-full"]
_SSL_MODES: Final[Mapping[str, SslMode]] = {
    "disable": "disable",
    "": "prefer",
    "allow": "prefer",
    "prefer": "prefer",
    "require": "require",
    "verify-ca": "verify-ca",
    "verify-full": "verify-full",
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class PostgresTriggerConfig(_Model):
    """The PostgreSQL columns of a `postgres_trigger` row."""

    postgres_resource_path: str = Field(min_length=1)
    replication_slot_name: str
    publication_name: str

    @field_validator("postgres_resource_path")
    @classmethod
    def _resource_path(cls, path: str) -> str:
        if not path.strip():
            raise InvalidInput("postgres_resource_path", "cannot be blank")
        if path.startswith("datatable://"):
            raise InvalidInput(
                "postgres_resource_path",
                "workspace data tables (datatable://) are not supported: name a postgresql "
                "resource",
            )
        return path

    @field_validator("replication_slot_name")
    @classmethod
    def _slot_name(cls, name: str) -> str:
        return check_slot_name(name, "replication_slot_name")

    @field_validator("publication_name")
    @classmethod
    def _publication_name(cls, name: str) -> str:
        return check_publication_name(name, "publication_name")


def check_slot_name(name: str, field: str = "name") -> str:
    """`name` if PostgreSQL accepts it as a replication slot name, else InvalidInput."""
    if not SLOT_NAME.match(name):
        raise InvalidInput(
            field,
            f"{name!r} is not a replication slot name: 1 to 63 lower case letters, digits or _",
        )
    return name


def check_publication_name(name: str, field: str = "publication") -> str:
    """`name` if it can name a publication (any text of 1 to 63 bytes), else InvalidInput."""
    if not name.strip() or "\x00" in name:
        raise InvalidInput(field, "a publication name cannot be blank")
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise InvalidInput(field, f"{name!r} is longer than {MAX_IDENTIFIER_BYTES} bytes")
    return name


class PostgresResource(_Model):
    """A `postgresql` resource: where the database is and how to log in."""

    host: str = Field(min_length=1)
    port: int = Field(default=5432, ge=1, le=65535)
    user: str = Field(min_length=1)
    password: str = ""
    dbname: str = Field(min_length=1)
    sslmode: SslMode = "prefer"
    root_certificate_pem: str | None = None

    @field_validator("sslmode", mode="before")
    @classmethod
    def _ssl_mode(cls, value: Any) -> SslMode:
        mode = _SSL_MODES.get(value if isinstance(value, str) else "?")
        if mode is None and value is not None:
            raise InvalidInput(
                "sslmode",
                f"{value!r} is not an sslmode: use disable, prefer, require, verify-ca or "
                "verify-full",
            )
        return mode or "prefer"

    @field_validator("root_certificate_pem", mode="before")
    @classmethod
    def _empty_is_absent(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _verify_ca_needs_certificate(self) -> Self:
        if self.sslmode == "verify-ca" and self.root_certificate_pem is None:
            raise InvalidInput(
                "root_certificate_pem",
                "required with sslmode verify-ca; verify-full checks against the system's "
                "certificate authorities when it is absent",
            )
        return self

    def describe(self) -> str:
        """`host:port/dbname`, for messages (never the credentials)."""
        return f"{self.host}:{self.port}/{self.dbname}"


class TableToTrack(_Model):
    """One published table, optionally with a column list and a row filter."""

    table_name: str
    columns_name: tuple[str, ...] | None = None
    where_clause: str | None = None

    @field_validator("table_name")
    @classmethod
    def _table_name(cls, name: str) -> str:
        if not name.strip():
            raise InvalidInput("table_to_track.table_name", "cannot be blank")
        return name

    @field_validator("columns_name", mode="before")
    @classmethod
    def _no_columns_is_all(cls, value: Any) -> Any:
        return None if value == [] else value

    @field_validator("where_clause", mode="before")
    @classmethod
    def _blank_filter_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class SchemaToTrack(_Model):
    """The published tables of one schema; none listed means every table of the schema."""

    schema_name: str
    table_to_track: tuple[TableToTrack, ...] = ()

    @field_validator("schema_name")
    @classmethod
    def _schema_name(cls, name: str) -> str:
        if not name.strip():
            raise InvalidInput("table_to_track.schema_name", "cannot be blank")
        return name


class PublicationSpec(_Model):
    """A publication as the management API reads and writes it.

    `transaction_to_track` lists the published operations (every one when empty);
    `table_to_track` the schemas and tables (all tables of the database when empty or absent).
    """

    transaction_to_track: tuple[str, ...] = ()
    table_to_track: tuple[SchemaToTrack, ...] = ()

    @field_validator("transaction_to_track")
    @classmethod
    def _operations(cls, operations: tuple[str, ...]) -> tuple[str, ...]:
        wanted = tuple(dict.fromkeys(operation.lower() for operation in operations))
        for operation in wanted:
            if operation not in OPERATIONS:
                raise InvalidInput(
                    "transaction_to_track", f"{operation!r} is not one of insert, update, delete"
                )
        return wanted

    @field_validator("table_to_track", mode="before")
    @classmethod
    def _absent_is_all(cls, value: Any) -> Any:
        return () if value is None else value

    @field_validator("table_to_track")
    @classmethod
    def _tables(cls, schemas: tuple[SchemaToTrack, ...]) -> tuple[SchemaToTrack, ...]:
        names = [schema.schema_name for schema in schemas]
        if len(set(names)) != len(names):
            raise InvalidInput("table_to_track", "each schema_name may appear once")
        for schema in schemas:
            tables = [table.table_name for table in schema.table_to_track]
            if len(set(tables)) != len(tables):
                raise InvalidInput(
                    "table_to_track", f"a table of schema {schema.schema_name!r} is listed twice"
                )
        whole_schemas = any(not schema.table_to_track for schema in schemas)
        with_columns = any(
            table.columns_name for schema in schemas for table in schema.table_to_track
        )
        if whole_schemas and with_columns:
            raise InvalidInput(
                "table_to_track",
                "a publication that tracks whole schemas cannot have column lists",
            )
        return schemas

    @property
    def all_tables(self) -> bool:
        """Whether the publication is `FOR ALL TABLES`."""
        return not self.table_to_track

    def check_server(self, version_num: int) -> None:
        """InvalidInput when the server (`server_version_num`) cannot publish this."""
        if version_num >= FIRST_VERSION_WITH_ROW_FILTERS:
            return
        tables = [table for schema in self.table_to_track for table in schema.table_to_track]
        if any(not schema.table_to_track for schema in self.table_to_track):
            refused = "whole-schema tracking"
        elif any(table.columns_name for table in tables):
            refused = "column lists"
        elif any(table.where_clause for table in tables):
            refused = "row filters (where_clause)"
        else:
            return
        raise InvalidInput("table_to_track", f"{refused} need PostgreSQL 15 or later")


def validate_trigger(row: Mapping[str, Any]) -> PostgresTriggerConfig:
    """The trigger's PostgreSQL config; `InvalidInput` naming the first field that is wrong."""
    return _validated(PostgresTriggerConfig, row)


def parse_resource(value: Any) -> PostgresResource:
    """A `postgresql` resource value; `InvalidInput` naming the first field that is wrong."""
    return _validated(PostgresResource, value)


def parse_publication(value: Any) -> PublicationSpec:
    """A publication body; `InvalidInput` naming the first field that is wrong."""
    return _validated(PublicationSpec, value)


def _validated(model: type[_M], value: Any) -> _M:
    if isinstance(value, Mapping):
        value = dict(value)
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(part) for part in problem["loc"] if not isinstance(part, int))
        raise InvalidInput(field or "value", problem["msg"]) from None


def create_publication_sql(name: str, spec: PublicationSpec) -> sql.Composed:
    """`CREATE PUBLICATION` for `spec`."""
    target = sql.SQL("FOR ALL TABLES") if spec.all_tables else sql.SQL("FOR {}").format(
        _objects(spec)
    )  # fmt: skip
    statement = sql.SQL("CREATE PUBLICATION {} {}").format(sql.Identifier(name), target)
    if spec.transaction_to_track:
        statement += sql.SQL(" WITH (publish = {})").format(
            sql.Literal(", ".join(spec.transaction_to_track))
        )
    return statement


def alter_publication_sql(name: str, spec: PublicationSpec) -> list[sql.Composed]:
    """The `ALTER PUBLICATION`s that give a publication of listed tables `spec`'s tables and
    operations; `spec` must list tables (`ALTER` cannot make a publication `FOR ALL TABLES`)."""
    if spec.all_tables:
        raise ValueError("ALTER PUBLICATION cannot publish all tables: drop and create it")
    publication = sql.Identifier(name)
    publish = ", ".join(spec.transaction_to_track) or DEFAULT_PUBLISH
    return [
        sql.SQL("ALTER PUBLICATION {} SET {}").format(publication, _objects(spec)),
        sql.SQL("ALTER PUBLICATION {} SET (publish = {})").format(
            publication, sql.Literal(publish)
        ),
    ]


def _objects(spec: PublicationSpec) -> sql.Composed:
    """The publication objects: the listed tables (one `TABLE` keyword, which PostgreSQL 14
    requires), then each whole schema."""
    tables = [
        _table(schema.schema_name, table)
        for schema in spec.table_to_track
        for table in schema.table_to_track
    ]
    objects: list[sql.Composable] = []
    if tables:
        objects.append(sql.SQL("TABLE ") + sql.SQL(", ").join(tables))
    objects.extend(
        sql.SQL("TABLES IN SCHEMA {}").format(sql.Identifier(schema.schema_name))
        for schema in spec.table_to_track
        if not schema.table_to_track
    )
    return sql.SQL(", ").join(objects)


def _table(schema: str, table: TableToTrack) -> sql.Composed:
    item = sql.SQL("ONLY {}").format(sql.Identifier(schema, table.table_name))
    if table.columns_name:
        item += sql.SQL(" ({})").format(sql.SQL(", ").join(map(sql.Identifier, table.columns_name)))
    if table.where_clause:
        # A row filter is an SQL expression by nature. It runs on the resource's own database
        # with its own credentials, inside one statement sent with the extended protocol, which
        # refuses a second statement.
        item += sql.SQL(" WHERE ({})").format(sql.SQL(table.where_clause))
    return item


@asynccontextmanager
async def connection_params(resource: PostgresResource) -> AsyncIterator[dict[str, Any]]:
    """The libpq connection parameters of `resource`, valid inside the block.

    A `root_certificate_pem` is written to a private temporary directory, removed on exit:
    libpq reads a certificate authority from a file only, during the TLS handshake.
    """
    params: dict[str, Any] = {
        "host": resource.host,
        "port": resource.port,
        "user": resource.user,
        "password": resource.password,
        "dbname": resource.dbname,
        "sslmode": resource.sslmode,
        "connect_timeout": CONNECT_TIMEOUT_S,
    }
    if resource.sslmode not in ("verify-ca", "verify-full"):
        yield params
        return
    if resource.root_certificate_pem is None:
        # libpq's name for the operating system's certificate authorities (libpq 16 and later).
        yield {**params, "sslrootcert": "system"}
        return
    directory = await asyncio.to_thread(tempfile.mkdtemp, prefix="gateway-postgres-")
    try:
        certificate = Path(directory, "root.crt")
        await asyncio.to_thread(certificate.write_text, resource.root_certificate_pem)
        yield {**params, "sslrootcert": str(certificate)}
    finally:
        await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)


@asynccontextmanager
async def admin_connection(
    resource: PostgresResource, field_name: str
) -> AsyncIterator[AsyncConnection[dict[str, Any]]]:
    """An autocommit connection to the resource's database, rows as dicts, for the management
    API and the trigger status; the database's errors become the project's (`_map_error`),
    and `field_name` is the input a refused statement is blamed on."""
    async with connection_params(resource) as params:
        try:
            conn = await AsyncConnection.connect(
                **params, autocommit=True, row_factory=dict_row, application_name="gateway"
            )
        except psycopg.OperationalError as exc:
            raise InvalidInput(
                "resource",
                f"cannot connect to PostgreSQL at {resource.describe()}: {str(exc).strip()}",
            ) from None
    try:
        with _mapped_errors(resource, field_name):
            yield conn
    finally:
        await conn.close()


@contextmanager
def _mapped_errors(resource: PostgresResource, field_name: str) -> Iterator[None]:
    try:
        yield
    except psycopg.Error as exc:
        mapped = _map_error(exc, resource, field_name)
        if mapped is None:
            raise
        raise mapped from None


def _map_error(
    exc: psycopg.Error, resource: PostgresResource, field_name: str
) -> GatewayError | None:
    """The project's error for a database error, None for one that is not the caller's doing."""
    state = exc.sqlstate or ""
    message = (exc.diag.message_primary or str(exc)).strip()
    if state in ("42710", "55006"):  # duplicate_object, object_in_use
        return Conflict(message)
    if state == "42704":  # undefined_object
        return NotFound(message)
    if state == "42501":  # insufficient_privilege
        return Forbidden(f"the user of {resource.describe()} may not do this: {message}")
    if state[:2] in ("42", "22", "0A", "55", "53"):
        # syntax or undefined names, bad values, unsupported features, wrong server settings,
        # and limits such as max_replication_slots
        return InvalidInput(field_name, message)
    if isinstance(exc, psycopg.OperationalError):
        return InvalidInput("resource", f"PostgreSQL at {resource.describe()}: {message}")
    return None

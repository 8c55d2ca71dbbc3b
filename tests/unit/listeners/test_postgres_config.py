"""PostgreSQL CDC configuration: trigger columns, the `postgresql` resource, publications."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import InvalidInput
from gateway.listeners.postgres_config import (
    PublicationSpec,
    alter_publication_sql,
    connection_params,
    create_publication_sql,
    parse_publication,
    parse_resource,
    validate_trigger,
)

ROW = {
    "postgres_resource_path": "u/alice/db",
    "replication_slot_name": "orders_slot",
    "publication_name": "orders",
    "mode": "enabled",
}
RESOURCE = {"host": "db.internal", "user": "cdc", "password": "s3cret", "dbname": "shop"}


def invalid(call: Any, *args: Any) -> InvalidInput:
    """The InvalidInput that `call(*args)` raises."""
    with pytest.raises(InvalidInput) as raised:
        call(*args)
    return raised.value


def test_a_trigger_row_gives_its_resource_slot_and_publication() -> None:
    config = validate_trigger(ROW)

    assert (config.postgres_resource_path, config.replication_slot_name) == (
        "u/alice/db",
        "orders_slot",
    )
    assert config.publication_name == "orders"


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("replication_slot_name", "Orders", "not a replication slot name"),
        ("replication_slot_name", "orders-slot", "not a replication slot name"),
        ("replication_slot_name", "s" * 64, "not a replication slot name"),
        ("publication_name", " ", "cannot be blank"),
        ("publication_name", "p" * 64, "longer than 63 bytes"),
        ("postgres_resource_path", "  ", "cannot be blank"),
        ("postgres_resource_path", "datatable://main", "not supported"),
    ],
)
def test_a_bad_trigger_column_is_named(column: str, value: str, reason: str) -> None:
    error = invalid(validate_trigger, {**ROW, column: value})

    assert error.field == column
    assert reason in error.reason


def test_a_missing_trigger_column_is_named() -> None:
    row = dict(ROW)
    del row["publication_name"]

    assert invalid(validate_trigger, row).field == "publication_name"


def test_a_resource_defaults_to_port_5432_and_sslmode_prefer() -> None:
    resource = parse_resource(RESOURCE)

    assert (resource.port, resource.sslmode, resource.root_certificate_pem) == (
        5432,
        "prefer",
        None,
    )
    assert resource.describe() == "db.internal:5432/shop"
    assert "s3cret" not in repr(resource.describe())


@pytest.mark.parametrize(
    ("given", "mode"),
    [
        ("disable", "disable"),
        ("", "prefer"),
        ("allow", "prefer"),
        ("prefer", "prefer"),
        ("require", "require"),
        ("verify-full", "verify-full"),
        (None, "prefer"),
    ],
)
def test_sslmodes_follow_windmill(given: str | None, mode: str) -> None:
    assert parse_resource({**RESOURCE, "sslmode": given}).sslmode == mode


def test_an_unknown_sslmode_is_refused() -> None:
    error = invalid(parse_resource, {**RESOURCE, "sslmode": "always"})

    assert error.field == "sslmode"


def test_verify_ca_needs_the_certificate_authority() -> None:
    error = invalid(parse_resource, {**RESOURCE, "sslmode": "verify-ca"})

    assert error.field == "root_certificate_pem"
    pem = "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n"
    resource = parse_resource({**RESOURCE, "sslmode": "verify-ca", "root_certificate_pem": pem})
    assert resource.root_certificate_pem == pem


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({**RESOURCE, "port": 70000}, "port"),
        ({**RESOURCE, "host": ""}, "host"),
        ({"host": "h", "user": "u"}, "dbname"),
        ("postgresql://h/db", "value"),
    ],
)
def test_a_bad_resource_is_refused_naming_the_field(value: Any, field: str) -> None:
    assert invalid(parse_resource, value).field == field


async def test_connection_params_hold_the_certificate_only_inside_the_block() -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    resource = parse_resource(
        {**RESOURCE, "port": "6543", "sslmode": "verify-full", "root_certificate_pem": pem}
    )

    async with connection_params(resource) as params:
        certificate = Path(params["sslrootcert"])
        assert await asyncio.to_thread(certificate.read_text) == pem
        assert (params["host"], params["port"], params["sslmode"]) == (
            "db.internal",
            6543,
            "verify-full",
        )
        assert (params["user"], params["password"], params["dbname"]) == ("cdc", "s3cret", "shop")

    assert not await asyncio.to_thread(certificate.parent.exists)


async def test_verify_full_without_a_certificate_uses_the_system_authorities() -> None:
    resource = parse_resource({**RESOURCE, "sslmode": "verify-full"})

    async with connection_params(resource) as params:
        assert params["sslrootcert"] == "system"


async def test_modes_that_do_not_verify_name_no_certificate_authority() -> None:
    async with connection_params(parse_resource({**RESOURCE, "sslmode": "require"})) as params:
        assert "sslrootcert" not in params


def test_a_publication_dedupes_operations_case_insensitively() -> None:
    spec = parse_publication({"transaction_to_track": ["Insert", "delete", "INSERT"]})

    assert spec.transaction_to_track == ("insert", "delete")
    assert spec.all_tables


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"transaction_to_track": ["upsert"]}, "not one of insert, update, delete"),
        (
            {"table_to_track": [{"schema_name": "a"}, {"schema_name": "a"}]},
            "each schema_name may appear once",
        ),
        ({"table_to_track": [{"schema_name": " "}]}, "cannot be blank"),
        (
            {"table_to_track": [{"schema_name": "a", "table_to_track": [{"table_name": ""}]}]},
            "cannot be blank",
        ),
        (
            {
                "table_to_track": [
                    {
                        "schema_name": "a",
                        "table_to_track": [{"table_name": "t"}, {"table_name": "t"}],
                    }
                ]
            },
            "listed twice",
        ),
        (
            {
                "table_to_track": [
                    {"schema_name": "whole"},
                    {
                        "schema_name": "a",
                        "table_to_track": [{"table_name": "t", "columns_name": ["id"]}],
                    },
                ]
            },
            "cannot have column lists",
        ),
    ],
)
def test_a_bad_publication_is_refused(body: dict[str, Any], reason: str) -> None:
    error = invalid(parse_publication, body)

    assert error.field.startswith(("table_to_track", "transaction_to_track"))
    assert reason in error.reason


def test_a_publication_without_tables_publishes_all_tables() -> None:
    statement = create_publication_sql("orders", PublicationSpec())

    assert statement.as_string(None) == 'CREATE PUBLICATION "orders" FOR ALL TABLES'


def test_a_publication_of_tables_with_columns_and_row_filters() -> None:
    spec = parse_publication(
        {
            "transaction_to_track": ["insert", "update"],
            "table_to_track": [
                {
                    "schema_name": "public",
                    "table_to_track": [
                        {"table_name": "Orders", "columns_name": ["id", "total"]},
                        {"table_name": "items", "where_clause": "qty > 0", "columns_name": []},
                    ],
                }
            ],
        }
    )

    assert create_publication_sql('my "pub"', spec).as_string(None) == (
        'CREATE PUBLICATION "my ""pub""" FOR TABLE ONLY "public"."Orders" ("id", "total"), '
        'ONLY "public"."items" WHERE (qty > 0) WITH (publish = \'insert, update\')'
    )


def test_a_publication_of_whole_schemas_and_tables() -> None:
    spec = parse_publication(
        {
            "table_to_track": [
                {"schema_name": "audit"},
                {"schema_name": "public", "table_to_track": [{"table_name": "t"}]},
            ]
        }
    )

    assert create_publication_sql("p", spec).as_string(None) == (
        'CREATE PUBLICATION "p" FOR TABLE ONLY "public"."t", TABLES IN SCHEMA "audit"'
    )


def test_altering_sets_the_tables_and_the_operations() -> None:
    spec = parse_publication(
        {"table_to_track": [{"schema_name": "public", "table_to_track": [{"table_name": "t"}]}]}
    )

    assert [statement.as_string(None) for statement in alter_publication_sql("p", spec)] == [
        'ALTER PUBLICATION "p" SET TABLE ONLY "public"."t"',
        "ALTER PUBLICATION \"p\" SET (publish = 'insert, update, delete, truncate')",
    ]
    with pytest.raises(ValueError, match="drop and create"):
        alter_publication_sql("p", PublicationSpec())


@pytest.mark.parametrize(
    ("table", "refused"),
    [
        ({"schema_name": "s"}, "whole-schema tracking"),
        (
            {"schema_name": "s", "table_to_track": [{"table_name": "t", "columns_name": ["a"]}]},
            "column lists",
        ),
        (
            {"schema_name": "s", "table_to_track": [{"table_name": "t", "where_clause": "a > 1"}]},
            "row filters (where_clause)",
        ),
    ],
)
def test_postgresql_14_cannot_publish_what_needs_15(table: dict[str, Any], refused: str) -> None:
    spec = parse_publication({"table_to_track": [table]})

    error = invalid(spec.check_server, 140011)

    assert error.reason == f"{refused} need PostgreSQL 15 or later"
    spec.check_server(150002)
    parse_publication(
        {"table_to_track": [{"schema_name": "s", "table_to_track": [{"table_name": "t"}]}]}
    ).check_server(140011)

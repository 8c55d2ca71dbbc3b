"""The nine trigger tables: which columns each kind has beyond the shared ones."""

from __future__ import annotations

from dataclasses import dataclass

SHARED_COLUMNS = (
    "path", "script_path", "is_flow", "workspace_id", "edited_by", "email", "permissioned_as",
    "edited_at", "extra_perms", "error_handler_path", "error_handler_args", "retry", "mode",
    "labels",
)  # fmt: skip
SERVER_STATE_COLUMNS = ("server_id", "last_server_ping", "error")


@dataclass(frozen=True, slots=True)
class TriggerTable:
    """One kind's table: its config columns and whether a leased listener serves it."""

    kind: str
    config_columns: tuple[str, ...]
    leased: bool

    @property
    def table(self) -> str:
        """The table name (`kafka_trigger`, ...)."""
        return f"{self.kind}_trigger"

    @property
    def writable_columns(self) -> tuple[str, ...]:
        """Columns a create or update writes."""
        return (*SHARED_COLUMNS, *self.config_columns)

    @property
    def readable_columns(self) -> tuple[str, ...]:
        """Columns a read returns."""
        state = SERVER_STATE_COLUMNS if self.leased else ()
        return (*self.writable_columns, *state)


TRIGGER_TABLES: dict[str, TriggerTable] = {
    t.kind: t
    for t in (
        TriggerTable(
            "http",
            (
                "route_path", "route_path_key", "http_method", "authentication_method",
                "authentication_resource_path", "static_asset_config", "is_static_website",
                "workspaced_route", "wrap_body", "raw_string", "summary", "description",
                "request_type", "allowed_origins",
            ),
            leased=False,
        ),
        TriggerTable(
            "websocket",
            (
                "url", "filters", "filter_logic", "initial_messages", "url_runnable_args",
                "can_return_message", "can_return_error_result", "heartbeat",
            ),
            leased=True,
        ),
        TriggerTable(
            "kafka",
            (
                "kafka_resource_path", "topics", "group_id", "filters", "filter_logic",
                "auto_offset_reset", "reset_offset", "auto_commit",
            ),
            leased=True,
        ),
        TriggerTable(
            "nats",
            ("nats_resource_path", "subjects", "stream_name", "consumer_name", "use_jetstream"),
            leased=True,
        ),
        TriggerTable(
            "sqs",
            ("queue_url", "aws_resource_path", "message_attributes", "aws_auth_resource_type"),
            leased=True,
        ),
        TriggerTable(
            "gcp",
            (
                "gcp_resource_path", "topic_id", "subscription_id", "delivery_type",
                "delivery_config", "subscription_mode", "auto_acknowledge_msg", "ack_deadline",
            ),
            leased=True,
        ),
        TriggerTable(
            "mqtt",
            (
                "mqtt_resource_path", "subscribe_topics", "client_version", "v5_config",
                "v3_config", "client_id",
            ),
            leased=True,
        ),
        TriggerTable(
            "postgres",
            ("postgres_resource_path", "replication_slot_name", "publication_name"),
            leased=True,
        ),
        TriggerTable("email", ("local_part", "workspaced_local_part"), leased=False),
    )
}  # fmt: skip
COLUMN_DEFAULTS: dict[str, object] = {
    "extra_perms": {}, "mode": "enabled", "filters": [], "filter_logic": "and",
    "initial_messages": [], "url_runnable_args": {}, "can_return_message": False,
    "can_return_error_result": False, "auto_offset_reset": "latest", "reset_offset": False,
    "auto_commit": True, "authentication_method": "none", "is_static_website": False,
    "workspaced_route": False, "wrap_body": False, "raw_string": False, "request_type": "sync",
    "aws_auth_resource_type": "credentials", "subscription_mode": "create_update",
    "auto_acknowledge_msg": True, "client_version": "v5", "workspaced_local_part": False,
    "use_jetstream": False,
}  # fmt: skip
"""What a column holds when a write does not say (the tables' own defaults)."""
LEASED_KINDS = tuple(kind for kind, table in TRIGGER_TABLES.items() if table.leased)


_LEASED = "mode IN ('enabled', 'suspended')"
_STALE = "(last_server_ping IS NULL OR last_server_ping < gw_now_plus(-:stale_after_s))"
_ROW = "workspace_id = :workspace_id AND path = :path"


def _lease_queries(table: str, dialect: str) -> dict[str, str]:
    """The lease protocol on one leased table (reference 1.5), plus the fence of job inserts.

    Every time comparison uses the database clock. On PostgreSQL the fence takes a share lock,
    so a takeover waits until the batch it guards has committed.
    """
    kind = table.removesuffix("_trigger")
    lock = " FOR SHARE" if dialect == "postgresql" else ""
    return {
        f"list_stale_{kind}_triggers": (
            f"SELECT workspace_id, path FROM {table} WHERE {_LEASED} AND {_STALE}"
        ),
        f"claim_{kind}_trigger": (
            f"UPDATE {table} SET server_id = :server_id, last_server_ping = now(), "
            f"error = :status WHERE {_ROW} AND {_LEASED} AND {_STALE} RETURNING path"
        ),
        f"ping_{kind}_trigger": (
            f"UPDATE {table} SET last_server_ping = now(), error = :status "
            f"WHERE {_ROW} AND server_id = :server_id AND {_LEASED}"
        ),
        f"reset_{kind}_trigger_for_restart": (
            f"UPDATE {table} SET last_server_ping = NULL WHERE {_ROW} AND server_id IS NULL"
        ),
        f"release_{kind}_trigger": (
            f"UPDATE {table} SET server_id = NULL, last_server_ping = NULL "
            f"WHERE {_ROW} AND server_id = :server_id"
        ),
        f"fence_{kind}_trigger": (
            f"SELECT server_id FROM {table} "
            f"WHERE {_ROW} AND server_id = :server_id AND {_LEASED}{lock}"
        ),
    }


def _union_queries() -> dict[str, str]:
    """Queries over the triggers of every kind (health, and the leases one instance holds)."""
    states = " UNION ALL ".join(
        f"SELECT '{kind}' AS kind, path, CAST(mode AS text) AS mode, "
        + (
            "server_id, last_server_ping, error"
            if spec.leased
            else "NULL AS server_id, NULL AS last_server_ping, NULL AS error"
        )
        + f", edited_at FROM {spec.table} WHERE workspace_id = :workspace_id"
        for kind, spec in TRIGGER_TABLES.items()
    )
    held = " UNION ALL ".join(
        f"SELECT '{kind}' AS kind, workspace_id, path, error, last_server_ping "
        f"FROM {spec.table} WHERE server_id = :server_id"
        for kind, spec in TRIGGER_TABLES.items()
        if spec.leased
    )
    return {
        "list_trigger_states": (
            "SELECT kind, path, mode, server_id, last_server_ping, error, edited_at, "
            f"now() AS db_now FROM ({states}) AS triggers ORDER BY kind, path"
        ),
        "list_triggers_held_by": (
            "SELECT kind, workspace_id, path, error, last_server_ping, now() AS db_now "
            f"FROM ({held}) AS held"
        ),
    }


def trigger_queries(dialect: str) -> dict[str, str]:
    """Named queries for every trigger table, generated from the column lists above."""
    queries: dict[str, str] = {}
    for kind, spec in TRIGGER_TABLES.items():
        columns = spec.writable_columns
        names = ", ".join(columns)
        values = ", ".join("now()" if c == "edited_at" else f":{c}" for c in columns)
        updates = ", ".join(
            f"{c} = excluded.{c}" for c in columns if c not in ("workspace_id", "path")
        )
        reset = ", server_id = NULL, last_server_ping = NULL, error = NULL" if spec.leased else ""
        queries[f"upsert_{kind}_trigger"] = (
            f"INSERT INTO {spec.table} ({names}) VALUES ({values}) "
            f"ON CONFLICT (workspace_id, path) DO UPDATE SET {updates}{reset}"
        )
        queries[f"get_{kind}_trigger"] = (
            f"SELECT {', '.join(spec.readable_columns)} FROM {spec.table} "
            "WHERE workspace_id = :workspace_id AND path = :path"
        )
        queries[f"list_{kind}_triggers"] = (
            f"SELECT {', '.join(spec.readable_columns)} FROM {spec.table} "
            "WHERE workspace_id = :workspace_id ORDER BY edited_at DESC, path"
        )
        queries[f"delete_{kind}_trigger"] = (
            f"DELETE FROM {spec.table} WHERE workspace_id = :workspace_id AND path = :path"
        )
        queries[f"set_{kind}_trigger_extra_perms"] = (
            f"UPDATE {spec.table} SET extra_perms = :extra_perms "
            "WHERE workspace_id = :workspace_id AND path = :path"
        )
        if spec.leased:
            queries.update(_lease_queries(spec.table, dialect))
    queries.update(_union_queries())
    return queries

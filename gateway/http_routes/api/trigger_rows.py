"""From a validated trigger body to the row the generated `upsert_<kind>_trigger` writes, with
the checks that read the database: the target script, the error handler, the resources, the
identity jobs will run as, and HTTP route clashes. And back: a row in the API's read model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from gateway.errors import Conflict, Forbidden, InvalidInput
from gateway.http_routes.api.auth import Caller
from gateway.http_routes.api.locks import lock_paths
from gateway.http_routes.api.permissions import visible
from gateway.http_routes.api.trigger_bodies import (
    EmailBody,
    HttpBody,
    TriggerBody,
    resolve_mode,
)
from gateway.listeners import (
    gcp_config,
    kafka_config,
    mqtt_config,
    nats_config,
    postgres_config,
    sqs_config,
    websocket_config,
)
from gateway.store import Row, Transaction
from gateway.store.trigger_tables import COLUMN_DEFAULTS, TriggerTable
from gateway.workspaces import Identity

IDENTITY_COLUMNS: Final = ("edited_by", "email", "permissioned_as")
BODY_SHARED_COLUMNS: Final = (
    "path", "script_path", "is_flow", "mode", "error_handler_path", "error_handler_args",
    "retry", "labels",
)  # fmt: skip
LISTENER_CHECKS: Final[Mapping[str, Callable[[Mapping[str, Any]], object]]] = {
    "kafka": kafka_config.validate_trigger,
    "nats": nats_config.validate_trigger,
    "mqtt": mqtt_config.validate_trigger,
    "sqs": sqs_config.validate_trigger,
    "gcp": gcp_config.validate_trigger,
    "postgres": postgres_config.validate_trigger,
    "websocket": websocket_config.validate_trigger,
}
"""The checks a listener makes of its own kind's row when it is written (InvalidInput)."""


@dataclass(frozen=True, slots=True)
class TriggerRow:
    """The values to upsert, and whether the owner kept is someone other than the caller."""

    values: dict[str, Any]
    on_behalf_of: str | None


async def row_values(
    tx: Transaction, caller: Caller, table: TriggerTable, body: TriggerBody, existing: Row | None
) -> TriggerRow:
    """The full row for `body`; columns the API never sets (`extra_perms`...) keep their value."""
    await _check_targets(tx, caller, body)
    if isinstance(body, HttpBody):
        await _check_route(tx, caller, body, existing)
    if (
        isinstance(body, EmailBody)
        and not caller.is_admin
        and (existing is None or existing["local_part"] != body.local_part)
    ):
        raise Forbidden("only workspace admins may choose an email trigger's local part")
    owner = await _owner(tx, caller, body)
    values: dict[str, Any] = {c: COLUMN_DEFAULTS.get(c) for c in table.writable_columns}
    if existing is not None:
        kept = set(table.writable_columns) - set(BODY_SHARED_COLUMNS) - set(IDENTITY_COLUMNS)
        values.update({c: existing[c] for c in kept - set(type(body).model_fields)})
    values.update(
        path=body.path,
        script_path=body.script_path,
        is_flow=body.is_flow,
        mode=resolve_mode(body.mode, body.enabled),
        error_handler_path=body.handler_path(),
        error_handler_args=body.error_handler_args,
        retry=body.retry_json(),
        labels=body.labels,
    )
    values.update(body.config(caller.workspace_id))
    values.update(identity_values(owner), workspace_id=caller.workspace_id)
    values.pop("edited_at")
    if check := LISTENER_CHECKS.get(table.kind):
        check(values)
    preserved = owner.username if owner.username != caller.username else None
    return TriggerRow(values, preserved)


def identity_values(owner: Identity) -> dict[str, str]:
    """The columns naming who edited the trigger and whom its jobs run as."""
    return {
        "edited_by": owner.username,
        "email": owner.email,
        "permissioned_as": owner.permissioned_as,
    }


async def _check_targets(tx: Transaction, caller: Caller, body: TriggerBody) -> None:
    static_site = isinstance(body, HttpBody) and body.static_asset_config is not None
    if body.is_flow:
        await _require_flow(tx, caller, "script_path", body.script_path)
    elif not (static_site and body.script_path == ""):
        await _require_script(tx, caller, "script_path", body.script_path)
    handler = body.handler_path()
    if handler is not None:
        await _require_script(tx, caller, "error_handler_path", handler)
    for field, path in body.resource_paths().items():
        row = await tx.fetch_one("get_resource", workspace_id=caller.workspace_id, path=path)
        if row is None or not visible(caller, path):
            raise InvalidInput(field, f"no resource at path {path!r} in this workspace")


async def _require_flow(tx: Transaction, caller: Caller, field: str, path: str) -> None:
    row = await tx.fetch_one("get_flow", workspace_id=caller.workspace_id, path=path)
    if row is None or row["archived"] or not visible(caller, path, row["extra_perms"]):
        raise InvalidInput(field, f"no flow at path {path!r} in this workspace")


async def _require_script(tx: Transaction, caller: Caller, field: str, path: str) -> None:
    row = await tx.fetch_one("get_latest_script", workspace_id=caller.workspace_id, path=path)
    if row is None or not visible(caller, path):
        raise InvalidInput(field, f"no script at path {path!r} in this workspace")


async def _check_route(
    tx: Transaction, caller: Caller, body: HttpBody, existing: Row | None
) -> None:
    key = body.route_key(caller.workspace_id)
    moved = existing is None or (existing["route_path"], existing["http_method"]) != (
        body.route_path,
        body.http_method,
    )
    if moved and not caller.is_admin:
        raise Forbidden("only workspace admins may create or move HTTP routes")
    await lock_paths(tx, "http_route", "*", f"{body.http_method} {key}")
    clash = await tx.fetch_one(
        "api_find_http_route",
        route_path_key=key,
        http_method=body.http_method,
        workspace_id=caller.workspace_id,
        path=body.path,
        previous_path=existing["path"] if existing is not None else body.path,
    )
    if clash is not None:
        raise Conflict(
            f"a route already exists with this path: {body.http_method.upper()} {body.route_path}"
        )


async def _owner(tx: Transaction, caller: Caller, body: TriggerBody) -> Identity:
    """The caller, or the user named by `permissioned_as` when an admin asks to keep it."""
    wanted = body.permissioned_as
    if not (body.preserve_permissioned_as and wanted) or wanted == f"u/{caller.username}":
        return caller.identity
    if not caller.is_admin:
        raise Forbidden("only workspace admins may keep another user's identity on a trigger")
    if not wanted.startswith("u/"):
        raise InvalidInput("permissioned_as", "must name a user: u/<username>")
    user = await tx.fetch_one(
        "get_user", workspace_id=caller.workspace_id, username=wanted.removeprefix("u/")
    )
    if user is None:
        raise InvalidInput("permissioned_as", f"no user {wanted!r} in this workspace")
    return Identity(user["username"], user["email"])


def trigger_json(row: Row) -> dict[str, Any]:
    """A trigger row in the read model: ISO-8601 times, null fields (the server state of an
    unclaimed trigger among them) left out."""
    body: dict[str, Any] = {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in row.items()
    }
    body["extra_perms"] = row["extra_perms"] or {}
    body["permissioned_as"] = row["permissioned_as"] or f"u/{row['edited_by']}"
    body["is_draft"] = False
    return {key: value for key, value in body.items() if value is not None}

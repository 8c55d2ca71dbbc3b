"""Triggers of every kind under `/w/{workspace}/<kind>_triggers/...`: create (201, the path as
text), update (the full body; a new `path` renames), get, list, exists, delete, and setmode
(`{"mode"}`, or the legacy `{"enabled"}`, also at `setenabled`).

List filters: `path` (the target script), `is_flow`, `path_start` (a prefix of the trigger's
own path), `label`, `page` (from 1) and `per_page`. Every write is audited as
`<kind>_triggers.<operation>`; a write to a leased kind clears its server state, so the
listener restarts with the new configuration.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.errors import Conflict, NotFound
from gateway.http_routes.api import audit
from gateway.http_routes.api.auth import Caller, Endpoint, in_workspace
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.destinations import check_destination
from gateway.http_routes.api.locks import lock_paths
from gateway.http_routes.api.permissions import (
    check_path,
    require_visible,
    require_writable,
    visible,
)
from gateway.http_routes.api.request_parsing import (
    Page,
    parse_model,
    query_bool,
    query_text,
    read_json,
)
from gateway.http_routes.api.trigger_bodies import BODIES, ModeChange, TriggerBody
from gateway.http_routes.api.trigger_rows import (
    TriggerRow,
    identity_values,
    row_values,
    trigger_json,
)
from gateway.http_routes.routes import routes_changed
from gateway.store import Row, Transaction, fetch_all
from gateway.store.trigger_tables import TRIGGER_TABLES, TriggerTable

KindEndpoint = Callable[[Request, Caller, TriggerTable], Awaitable[Response]]


def _domain(table: TriggerTable) -> str:
    return f"{table.kind}_triggers"


async def _body(request: Request, caller: Caller, table: TriggerTable) -> TriggerBody:
    body = checked_body(caller, table, await read_json(request))
    check_destination(request, body)
    return body


def checked_body(caller: Caller, table: TriggerTable, data: Any) -> TriggerBody:
    """A create/update body of `table`'s kind, validated, once the caller may write its path."""
    body = validated_body(caller, table, data)
    require_writable(caller, body.path)
    return body


def validated_body(caller: Caller, table: TriggerTable, data: Any) -> TriggerBody:
    """A body of `table`'s kind, validated, its path within the token's scopes."""
    body = parse_model(BODIES[table.kind], data)
    check_path(body.path)
    caller.require_scope(_domain(table), "write", body.path)
    body.check()
    return body


async def _find(tx: Transaction, caller: Caller, table: TriggerTable, path: str) -> Row:
    row = await tx.fetch_one(
        f"get_{table.kind}_trigger", workspace_id=caller.workspace_id, path=path
    )
    if row is None:
        raise NotFound(f"Trigger not found at path: {path}")
    require_visible(caller, path, "trigger", row["extra_perms"])
    return row


async def _find_writable(tx: Transaction, caller: Caller, table: TriggerTable, path: str) -> Row:
    row = await _find(tx, caller, table, path)
    require_writable(caller, path, row["extra_perms"])
    return row


async def _changed(tx: Transaction, table: TriggerTable) -> None:
    """Tell every instance's HTTP route table to reload after an `http_trigger` write."""
    if table.kind == "http":
        await routes_changed(tx)


async def _write(
    tx: Transaction, caller: Caller, table: TriggerTable, row: TriggerRow, operation: str
) -> None:
    await tx.execute(f"upsert_{table.kind}_trigger", **row.values)
    await _changed(tx, table)
    path = row.values["path"]
    action: audit.ActionKind = "create" if operation == "create" else "update"
    await audit.record(
        tx,
        caller.identity,
        caller.workspace_id,
        f"{_domain(table)}.{operation}",
        path,
        action=action,
    )
    if row.on_behalf_of is not None:
        await audit.record(
            tx,
            caller.identity,
            caller.workspace_id,
            f"{_domain(table)}.on_behalf_of",
            path,
            action=action,
            parameters={"permissioned_as": f"u/{row.on_behalf_of}"},
        )


async def create_in(
    tx: Transaction, caller: Caller, table: TriggerTable, body: TriggerBody
) -> None:
    """Create the trigger `body` describes inside `tx`; Conflict when its path is taken."""
    await lock_paths(tx, table.table, caller.workspace_id, body.path)
    if await tx.fetch_one(
        f"get_{table.kind}_trigger", workspace_id=caller.workspace_id, path=body.path
    ):
        raise Conflict(f"a {table.kind} trigger exists already at path {body.path!r}")
    await _write(tx, caller, table, await row_values(tx, caller, table, body, None), "create")


async def create_trigger(request: Request, caller: Caller, table: TriggerTable) -> Response:
    """A new trigger; 201 with its path."""
    body = await _body(request, caller, table)
    async with store_of(request).transaction() as tx:
        await create_in(tx, caller, table, body)
    return PlainTextResponse(body.path, 201)


async def update_trigger(request: Request, caller: Caller, table: TriggerTable) -> Response:
    """Replace a trigger with the full body given; a different `path` renames it."""
    path = request.path_params["path"]
    caller.require_scope(_domain(table), "write", path)
    body = validated_body(caller, table, await read_json(request))
    check_destination(request, body)
    async with store_of(request).transaction() as tx:
        await lock_paths(tx, table.table, caller.workspace_id, path, body.path)
        existing = await _find_writable(tx, caller, table, path)
        if body.path != path:
            require_writable(caller, body.path)
            if await tx.fetch_one(
                f"get_{table.kind}_trigger", workspace_id=caller.workspace_id, path=body.path
            ):
                raise Conflict(f"a {table.kind} trigger exists already at path {body.path!r}")
        row = await row_values(tx, caller, table, body, existing)
        if body.path != path:
            await tx.execute(
                f"delete_{table.kind}_trigger", workspace_id=caller.workspace_id, path=path
            )
        await _write(tx, caller, table, row, "update")
    return PlainTextResponse(f"Trigger '{body.path}' updated")


async def delete_trigger(request: Request, caller: Caller, table: TriggerTable) -> Response:
    """Remove a trigger."""
    path = request.path_params["path"]
    caller.require_scope(_domain(table), "write", path)
    async with store_of(request).transaction() as tx:
        await lock_paths(tx, table.table, caller.workspace_id, path)
        await _find_writable(tx, caller, table, path)
        await tx.execute(
            f"delete_{table.kind}_trigger", workspace_id=caller.workspace_id, path=path
        )
        await _changed(tx, table)
        await audit.record(
            tx,
            caller.identity,
            caller.workspace_id,
            f"{_domain(table)}.delete",
            path,
            action="delete",
        )
    return PlainTextResponse(f"Trigger '{path}' deleted")


async def get_trigger(request: Request, caller: Caller, table: TriggerTable) -> Response:
    """One trigger."""
    path = request.path_params["path"]
    caller.require_scope(_domain(table), "read", path)
    async with store_of(request).transaction() as tx:
        row = await _find(tx, caller, table, path)
    return JSONResponse(trigger_json(row))


async def list_triggers(request: Request, caller: Caller, table: TriggerTable) -> Response:
    """A page of the triggers the caller may see, most recently edited first."""
    caller.require_scope(_domain(table), "read")
    page = Page.of(request)
    script_path = query_text(request, "path")
    is_flow = query_bool(request, "is_flow")
    path_start = query_text(request, "path_start") or ""
    label = query_text(request, "label")
    rows = await fetch_all(
        store_of(request), f"list_{table.kind}_triggers", workspace_id=caller.workspace_id
    )
    wanted = [
        row
        for row in rows
        if visible(caller, row["path"], row["extra_perms"])
        and row["path"].startswith(path_start)
        and script_path in (None, row["script_path"])
        and is_flow in (None, bool(row["is_flow"]))
        and (label is None or label in (row["labels"] or []))
    ]
    return JSONResponse([trigger_json(row) for row in page.of_items(wanted)])


async def exists_trigger(request: Request, caller: Caller, table: TriggerTable) -> Response:
    """Whether a trigger exists at the path (JSON boolean)."""
    path = request.path_params["path"]
    caller.require_scope(_domain(table), "read", path)
    async with store_of(request).transaction() as tx:
        row = await tx.fetch_one(
            f"get_{table.kind}_trigger", workspace_id=caller.workspace_id, path=path
        )
    return JSONResponse(row is not None)


async def set_trigger_mode(request: Request, caller: Caller, table: TriggerTable) -> Response:
    """Enable, disable or suspend a trigger; the caller becomes its editor."""
    path = request.path_params["path"]
    caller.require_scope(_domain(table), "write", path)
    mode = parse_model(ModeChange, await read_json(request)).resolved()
    async with store_of(request).transaction() as tx:
        await lock_paths(tx, table.table, caller.workspace_id, path)
        existing = await _find_writable(tx, caller, table, path)
        values: dict[str, Any] = {
            column: existing[column] for column in table.writable_columns if column != "edited_at"
        }
        values.update(identity_values(caller.identity), mode=mode)
        await tx.execute(f"upsert_{table.kind}_trigger", **values)
        await _changed(tx, table)
        await audit.record(
            tx,
            caller.identity,
            caller.workspace_id,
            f"{_domain(table)}.setmode",
            path,
            action="update",
            parameters={"mode": mode},
        )
    return PlainTextResponse(f"Trigger '{path}' {mode}")


def _bound(handler: KindEndpoint, table: TriggerTable) -> Endpoint:
    async def endpoint(request: Request, caller: Caller) -> Response:
        return await handler(request, caller, table)

    endpoint.__name__ = f"{handler.__name__}_{table.kind}"
    endpoint.__doc__ = handler.__doc__
    return in_workspace(endpoint)


def kind_routes(table: TriggerTable) -> list[Route]:
    """The endpoints of one kind of trigger."""
    prefix = f"/w/{{workspace}}/{table.kind}_triggers"
    tail = "{path:path}"
    return [
        Route(f"{prefix}/create", _bound(create_trigger, table), methods=["POST"]),
        Route(f"{prefix}/update/{tail}", _bound(update_trigger, table), methods=["POST"]),
        Route(f"{prefix}/delete/{tail}", _bound(delete_trigger, table), methods=["DELETE"]),
        Route(f"{prefix}/get/{tail}", _bound(get_trigger, table), methods=["GET"]),
        Route(f"{prefix}/list", _bound(list_triggers, table), methods=["GET"]),
        Route(f"{prefix}/exists/{tail}", _bound(exists_trigger, table), methods=["GET"]),
        Route(f"{prefix}/setmode/{tail}", _bound(set_trigger_mode, table), methods=["POST"]),
        Route(f"{prefix}/setenabled/{tail}", _bound(set_trigger_mode, table), methods=["POST"]),
    ]


routes = [route for table in TRIGGER_TABLES.values() for route in kind_routes(table)]

"""Grants on one object (Windmill's granular ACLs): `GET /w/{ws}/acls/get/{kind}/{path}`,
`POST .../acls/add/{kind}/{path}` with `{"owner": "u/<user>" | "g/all", "write": bool}` and
`POST .../acls/remove/{kind}/{path}` with `{"owner": ...}`.

They edit the object's `extra_perms`, which `permissions` reads. Kinds: `script`, `variable`,
`resource` and every `<kind>_trigger`. Only who owns the path (or an admin) changes its grants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.errors import InvalidInput, NotFound
from gateway.http_routes.api import audit
from gateway.http_routes.api.auth import Caller, in_workspace
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.locks import lock_paths
from gateway.http_routes.api.permissions import require_owner, require_visible
from gateway.http_routes.api.request_parsing import read_model
from gateway.store import Json, Row, Transaction
from gateway.store.trigger_tables import TRIGGER_TABLES

GRANTEE: Final = re.compile(r"^[ug]/[\w.@+-]+$")


@dataclass(frozen=True, slots=True)
class AclKind:
    """An object kind whose grants the API edits: its scope domain and its queries."""

    name: str
    domain: str
    get_query: str
    set_query: str


ACL_KINDS: Final[dict[str, AclKind]] = {
    kind.name: kind
    for kind in (
        AclKind("script", "scripts", "get_latest_script", "set_script_extra_perms"),
        AclKind("variable", "variables", "get_variable", "set_variable_extra_perms"),
        AclKind("resource", "resources", "get_resource", "set_resource_extra_perms"),
        *(
            AclKind(
                table.table,
                f"{kind}_triggers",
                f"get_{kind}_trigger",
                f"set_{kind}_trigger_extra_perms",
            )
            for kind, table in TRIGGER_TABLES.items()
        ),
    )
}


class Grant(BaseModel):
    """The body of `acls/add` and `acls/remove`."""

    model_config = ConfigDict(extra="ignore")

    owner: str = Field(pattern=GRANTEE.pattern, max_length=255)
    write: bool = False


def _target(request: Request) -> tuple[AclKind, str]:
    name = request.path_params["kind"]
    kind = ACL_KINDS.get(name)
    if kind is None:
        raise InvalidInput("kind", f"{name!r} has no grants here: use one of {sorted(ACL_KINDS)}")
    return kind, request.path_params["path"]


async def _grants(tx: Transaction, caller: Caller, kind: AclKind, path: str) -> dict[str, Any]:
    row: Row | None = await tx.fetch_one(
        kind.get_query, workspace_id=caller.workspace_id, path=path
    )
    if row is None:
        raise NotFound(f"{kind.name} not found at path {path!r}")
    require_visible(caller, path, kind.name, row["extra_perms"])
    return dict(row["extra_perms"] or {})


async def get_acls(request: Request, caller: Caller) -> Response:
    """The grants of one object: `{"u/<user>": write, ...}`."""
    kind, path = _target(request)
    caller.require_scope(kind.domain, "read", path)
    async with store_of(request).transaction() as tx:
        return JSONResponse(await _grants(tx, caller, kind, path))


async def add_acl(request: Request, caller: Caller) -> Response:
    """Grant a user (or every user, `g/all`) read or write access to one object."""
    grant = await read_model(request, Grant)
    return await _change(request, caller, grant, "add")


async def remove_acl(request: Request, caller: Caller) -> Response:
    """Take back the grant of one user or group."""
    grant = await read_model(request, Grant)
    return await _change(request, caller, grant, "remove")


async def _change(
    request: Request, caller: Caller, grant: Grant, operation: Literal["add", "remove"]
) -> Response:
    kind, path = _target(request)
    caller.require_scope(kind.domain, "write", path)
    async with store_of(request).transaction() as tx:
        await lock_paths(tx, kind.name, caller.workspace_id, path)
        grants = await _grants(tx, caller, kind, path)
        require_owner(caller, path)
        recorded: dict[str, Any] = {"owner": grant.owner}
        if operation == "add":
            grants[grant.owner] = recorded["write"] = grant.write
        else:
            grants.pop(grant.owner, None)
        await tx.execute(
            kind.set_query, workspace_id=caller.workspace_id, path=path, extra_perms=Json(grants)
        )
        await audit.record(
            tx,
            caller.identity,
            caller.workspace_id,
            f"acls.{operation}",
            f"{kind.name}/{path}",
            action="update",
            parameters=recorded,
        )
    return PlainTextResponse(f"{operation} granular acl for {grant.owner} on {kind.name} {path}")


_PREFIX = "/w/{workspace}/acls"
routes = [
    Route(f"{_PREFIX}/get/{{kind}}/{{path:path}}", in_workspace(get_acls), methods=["GET"]),
    Route(f"{_PREFIX}/add/{{kind}}/{{path:path}}", in_workspace(add_acl), methods=["POST"]),
    Route(f"{_PREFIX}/remove/{{kind}}/{{path:path}}", in_workspace(remove_acl), methods=["POST"]),
]

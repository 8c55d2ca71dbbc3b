"""`/version` and who am I: `GET /users/whoami` (global) and `GET /w/{workspace}/users/whoami`."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.http_routes.api.auth import Caller, Token, in_workspace, signed_in
from gateway.http_routes.api.context import store_of
from gateway.store import fetch_one


def gateway_version() -> str:
    """The installed version of the gateway."""
    try:
        return version("gateway")
    except PackageNotFoundError:
        return "unknown"


async def backend_version(request: Request) -> Response:
    """The server's version as text; no token needed."""
    return PlainTextResponse(f"gateway v{gateway_version()}")


async def global_whoami(request: Request, token: Token) -> Response:
    """The token's user, outside any workspace."""
    body: dict[str, object] = {
        "email": token.email,
        "username": token.username,
        "login_type": "password",
        "super_admin": token.super_admin,
        "verified": True,
        "first_time_user": False,
        "role_source": "manual",
        "disabled": False,
    }
    if token.workspace_id is not None:
        body["workspace_id"] = token.workspace_id
    return JSONResponse(body)


async def whoami(request: Request, caller: Caller) -> Response:
    """The caller as a user of the workspace."""
    user = await fetch_one(
        store_of(request), "get_user", workspace_id=caller.workspace_id, username=caller.username
    )
    created_at = user["created_at"].isoformat() if user else None
    body: dict[str, object] = {
        "workspace_id": caller.workspace_id,
        "email": caller.email,
        "username": caller.username,
        "is_admin": caller.is_admin,
        "is_super_admin": caller.token.super_admin,
        "operator": caller.is_operator,
        "disabled": False,
        "created_at": created_at,
        "folders": [],
        "folders_read": [],
        "folders_owners": [],
        "groups": [],
    }
    return JSONResponse({k: v for k, v in body.items() if v is not None})


routes = [
    Route("/version", backend_version, methods=["GET"]),
    Route("/users/whoami", signed_in(global_whoami), methods=["GET"]),
    Route("/w/{workspace}/users/whoami", in_workspace(whoami), methods=["GET"]),
]

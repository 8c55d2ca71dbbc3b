"""Kind-specific trigger endpoints: `http_triggers/route_exists`, `http_triggers/create_many`
and `email_triggers/local_part_exists`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.errors import InvalidInput
from gateway.http_routes.api.auth import Caller, in_workspace
from gateway.http_routes.api.context import store_of
from gateway.http_routes.api.request_parsing import parse_model, read_json
from gateway.http_routes.api.trigger_bodies import HttpBody
from gateway.http_routes.api.triggers import checked_body, create_in
from gateway.http_routes.routes import route_path_key
from gateway.store import fetch_one
from gateway.store.trigger_tables import TRIGGER_TABLES


class RouteQuestion(BaseModel):
    """The body of `POST /http_triggers/route_exists`."""

    model_config = ConfigDict(extra="ignore")

    route_path: str
    http_method: str
    trigger_path: str | None = None
    workspaced_route: bool = False


class LocalPartQuestion(BaseModel):
    """The body of `POST /email_triggers/local_part_exists`."""

    model_config = ConfigDict(extra="ignore")

    local_part: str
    workspaced_local_part: bool = False
    trigger_path: str | None = None


async def route_exists(request: Request, caller: Caller) -> Response:
    """Whether another HTTP trigger already answers this method on this route."""
    caller.require_scope("http_triggers", "read")
    question = parse_model(RouteQuestion, await read_json(request))
    workspace = caller.workspace_id if question.workspaced_route else None
    clash = await fetch_one(
        store_of(request),
        "api_find_http_route",
        route_path_key=route_path_key(question.route_path, workspace),
        http_method=question.http_method.lower(),
        workspace_id=caller.workspace_id,
        path=question.trigger_path or "",
        previous_path=question.trigger_path or "",
    )
    return JSONResponse(clash is not None)


async def create_many(request: Request, caller: Caller) -> Response:
    """Create several HTTP triggers at once: all of them, or none."""
    data = await read_json(request)
    if not isinstance(data, list) or not data:
        raise InvalidInput("body", "a non-empty JSON array of HTTP trigger bodies")
    table = TRIGGER_TABLES["http"]
    bodies = [checked_body(caller, table, item) for item in data]
    seen: set[tuple[str, str]] = set()
    for index, body in enumerate(bodies):
        assert isinstance(body, HttpBody)
        key = (body.http_method, body.route_key(caller.workspace_id))
        if key in seen:
            raise InvalidInput(f"[{index}].route_path", "the batch declares this route twice")
        seen.add(key)
    async with store_of(request).transaction() as tx:
        for body in bodies:
            await create_in(tx, caller, table, body)
    return PlainTextResponse(",".join(body.path for body in bodies), 201)


async def local_part_exists(request: Request, caller: Caller) -> Response:
    """Whether another email trigger already receives mail at this local part."""
    caller.require_scope("email_triggers", "read")
    question = parse_model(LocalPartQuestion, await read_json(request))
    taken = await fetch_one(
        store_of(request),
        "api_find_email_local_part",
        local_part=question.local_part,
        workspaced=question.workspaced_local_part,
        workspace_id=caller.workspace_id,
        path=question.trigger_path or "",
    )
    return JSONResponse(taken is not None)


routes = [
    Route(
        "/w/{workspace}/http_triggers/route_exists", in_workspace(route_exists), methods=["POST"]
    ),
    Route("/w/{workspace}/http_triggers/create_many", in_workspace(create_many), methods=["POST"]),
    Route(
        "/w/{workspace}/email_triggers/local_part_exists",
        in_workspace(local_part_exists),
        methods=["POST"],
    ),
]

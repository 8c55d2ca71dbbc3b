"""Workspace isolation and anonymous callers, over every route of the management API.

The routes are read from the application itself, so an endpoint added later is covered (or fails
these tests until it is): every `/w/{workspace}/...` route answers 404 to a token of another
workspace, and every route but the version answers 401 without a token, so nobody creates a
workspace, a user or a token without one.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

from starlette.routing import Mount, Route

from gateway.runtime import Gateway
from gateway.settings import Settings
from gateway.store import Store
from gateway.workspaces import ensure_workspace

from ..support import WS
from .conftest import Api
from .test_auth import BOB, add_secret

SAMPLE_PARAMS = {
    "workspace": WS,
    "path": "u/alice/secret",
    "id": str(uuid.uuid4()),
    "hash": "0123456789abcdef",
    "kind": "variable",
    "trigger_kind": "kafka",
    "runnable_kind": "script",
    "publication": "pub",
    "name": "postgresql",
    "version": "1",
    "token_prefix": "abcdefghij",
}
"""A value for each path parameter; a route with a parameter not listed here fails the tests."""
OUTSIDE_WORKSPACES = {
    "/version",
    "/users/whoami",
    "/workspaces/create",
    "/workspaces/list",
    "/users/tokens/create",
    "/users/tokens/list",
    "/users/tokens/delete/{token_prefix}",
}
"""The only routes not under `/w/{workspace}`: each acts on the caller's own token or user."""
ANONYMOUS = {"/version"}
PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")


def api_routes(store: Store, settings: Settings) -> Iterator[tuple[str, str]]:
    """(method, path template) of every route of the API mounted at `/api`."""
    app = Gateway(settings, store).app
    (api,) = [r for r in app.routes if isinstance(r, Mount) and r.path == "/api"]
    for route in api.routes:
        assert isinstance(route, Route), f"{route!r}: only plain routes are expected in the API"
        for method in sorted((route.methods or set()) - {"HEAD"}):
            yield method, route.path


def concrete(template: str) -> str:
    """The URL of a route template with sample values for its parameters."""

    def value(match: re.Match[str]) -> str:
        name, converter = match.groups()
        assert name in SAMPLE_PARAMS, f"{template}: add a sample value for {{{name}}}"
        return "1" if converter == "int" else SAMPLE_PARAMS[name]

    return PARAM.sub(value, template)


async def test_every_workspace_route_is_invisible_to_another_workspace(
    asgi_api: Api, settings: Settings
) -> None:
    await add_secret(asgi_api)
    async with asgi_api.store.transaction() as tx:
        await ensure_workspace(tx, "other", BOB)
    bound = await asgi_api.http(await asgi_api.token_for(BOB, "other"))
    unbound = await asgi_api.http(await asgi_api.token_for(BOB, None))
    routes = list(api_routes(asgi_api.store, settings))
    outside = {path for _, path in routes if not path.startswith("/w/{workspace}/")}
    assert outside == OUTSIDE_WORKSPACES, "a new route outside workspaces: decide who may call it"
    checked = 0
    for method, template in routes:
        if template in OUTSIDE_WORKSPACES:
            continue
        url = concrete(template)
        for http in (bound, unbound):
            response = await http.request(method, url, json={})
            assert response.status_code == 404, f"{method} {template}: {response.status_code}"
            assert response.json()["message"] == f"workspace {WS!r} not found", template
            assert "s3cret" not in response.text
        checked += 1
    families = {template.split("/")[3] for _, template in routes if template.startswith("/w/")}
    assert checked > 100 and {"variables", "acls", "audit", "jobs", "kafka_triggers"} <= families


async def test_no_route_but_the_version_answers_an_anonymous_caller(
    asgi_api: Api, settings: Settings
) -> None:
    anonymous = await asgi_api.http()
    anonymous.headers.pop("Authorization")
    for method, template in api_routes(asgi_api.store, settings):
        response = await anonymous.request(method, concrete(template), json={})
        expected = 200 if template in ANONYMOUS else 401
        assert response.status_code == expected, f"{method} {template}: {response.status_code}"
    created = await anonymous.post("/workspaces/create", json={"id": "stolen", "name": "x"})
    assert created.status_code == 401
    async with asgi_api.store.transaction() as tx:
        assert await tx.fetch_one("get_workspace", id="stolen") is None

"""The management API, served under `/api` with Windmill's paths and bodies, so that the
`windmill-api` client and `wmill` work against the gateway unchanged.

One module per resource family; `errors` maps the project's exceptions to HTTP once, `auth`
resolves the bearer token to the calling user.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette

from gateway.http_routes.api import (
    acls,
    audit,
    captures,
    connection_tests,
    errors,
    flows,
    job_runs,
    jobs,
    kafka_offsets,
    postgres_triggers,
    quarantine,
    resource_types,
    resources,
    scripts,
    suspended,
    tokens,
    trigger_extras,
    trigger_status,
    triggers,
    users,
    variables,
    workspaces,
)
from gateway.http_routes.rate_limits import token_rate_limiter

if TYPE_CHECKING:
    from gateway.runtime import Gateway


def build_api(gateway: Gateway) -> Starlette:
    """The API application of `gateway`, to mount at `/api`."""
    api = Starlette(
        routes=[
            *users.routes,
            *workspaces.routes,
            *tokens.routes,
            *resource_types.routes,
            *resources.routes,
            *variables.routes,
            *scripts.routes,
            *flows.routes,
            *job_runs.routes,
            *jobs.routes,
            *trigger_extras.routes,
            *trigger_status.routes,
            *connection_tests.routes,
            *kafka_offsets.routes,
            *triggers.routes,
            *audit.routes,
            *acls.routes,
            *suspended.routes,
            *quarantine.routes,
            *captures.routes,
            *postgres_triggers.routes,
        ],
        exception_handlers=dict(errors.HANDLERS),
    )
    api.state.gateway = gateway
    api.state.token_rate_limiter = token_rate_limiter(gateway.settings, gateway.metrics)
    return api

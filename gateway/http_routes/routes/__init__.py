"""User HTTP routes (`/api/r/...`) from the `http_trigger` table.

| module          | its one job                                                              |
|-----------------|--------------------------------------------------------------------------|
| `router`        | route syntax, `route_path_key`, matching a path (static > :param > *rest) |
| `table`         | the instance's route table, rebuilt when routes change; `routes_changed`  |
| `body`          | reading the body under a limit, parsing it by content type                |
| `http_args`     | job args with and without a preprocessor (routes and webhooks)            |
| `auth`          | `windmill`, `api_key` and `basic_http` authentication                     |
| `signatures`    | `signature` authentication: provider presets, tolerance, replays          |
| `submit`        | the job of a request, committed                                           |
| `pinned_jobs`   | plain jobs written pinned to known script versions, checked as written    |
| `waiting`       | a sync request's wait, ended by completion, timeout or disconnect         |
| `responses`     | refusals, job ids, a job's result mapped to a response                    |
| `cors`          | per-route allowed origins, preflights                                     |
| `static`        | static websites and assets from a folder under the static root            |
| `sse`           | the `sync_sse` event stream                                               |
| `endpoint`      | the ASGI app that runs a request through all of the above                 |
"""

from __future__ import annotations

from gateway.http_routes.routes.endpoint import RouteEndpoint, RouteOptions
from gateway.http_routes.routes.router import route_path_key
from gateway.http_routes.routes.table import routes_changed

__all__ = ["RouteEndpoint", "RouteOptions", "route_path_key", "routes_changed"]

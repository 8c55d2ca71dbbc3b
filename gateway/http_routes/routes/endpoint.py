"""`RouteEndpoint`: the ASGI app mounted at `/api/r`, serving the `http_trigger` routes.

A request goes through, in this order (reference 4.9):

1. HEAD: an empty 200; OPTIONS: a CORS preflight answered against the route the browser asks
   for (a plain OPTIONS: an empty 200); a method no route can have: 405;
2. the route for the method and path (404, or 405 when another method has one), then its rate
   limit (429 with ``Retry-After``, `gateway.http_routes.rate_limits`);
3. `windmill` authentication;
4. the body, read under the size limit (413) and parsed by content type (400, 415);
5. `api_key`, `basic_http` or `signature` authentication (a provider's challenge is answered
   here);
6. a static route's file (`static.py`), or else the job, committed (parked when the trigger is
   suspended: 200 text);
7. the answer by request type: `async` 201 with the job id (Windmill's status; 202 is not used),
   `sync` the job's result once it completes (504 after the timeout; a client that leaves cancels
   the job it created), `sync_sse` a stream of the job's progress.

Every answer carries the CORS headers of the route's `allowed_origins` (`cors.py`; before a
route is found, those of every origin); a refusal is `{"error": reason}`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import unquote
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.errors import NotFound
from gateway.http_routes.rate_limits import RateLimiter
from gateway.http_routes.routes.auth import (
    ResourceReader,
    WindmillAuth,
    check_api_key,
    check_basic,
)
from gateway.http_routes.routes.body import ParsedBody, media_type, parse_body, read_body
from gateway.http_routes.routes.cors import ALL_METHODS, ANY, CorsPolicy
from gateway.http_routes.routes.credentials import credential_headers, without_credentials
from gateway.http_routes.routes.errors import RequestRefused, RouteMisconfigured
from gateway.http_routes.routes.http_args import HttpRequestInfo
from gateway.http_routes.routes.responses import (
    JobCreated,
    empty,
    refusal,
    result_response,
    suspended,
    timed_out,
)
from gateway.http_routes.routes.signatures import Challenge, SignatureAuth, SignedRequest
from gateway.http_routes.routes.sse import job_events, sse_response
from gateway.http_routes.routes.static import StaticFiles
from gateway.http_routes.routes.submit import RouteJobs, default_creator
from gateway.http_routes.routes.table import METHODS, HttpRoute, LiveRouteTable, RouteMatch
from gateway.http_routes.routes.waiting import ClientDisconnected, wait_while_connected
from gateway.jobs.cancel import cancel_job
from gateway.jobs.model import Enqueued
from gateway.store import Store

logger = logging.getLogger(__name__)

CONNECTION_BROKE: Final = "http connection broke"
_WEBHOOK_ONLY_OPTIONS: Final = ("raw", "wrap_body")
_CHECKED_ON_THE_BODY: Final = frozenset({"api_key", "basic_http", "signature"})
"""The authentication methods checked once the body is read (`_authenticate`)."""


@dataclass(frozen=True, slots=True)
class RouteOptions:
    """The limits and timings of route serving (the `http_route_*` settings)."""

    max_body_bytes: int = 10 * 1024 * 1024
    sync_timeout_s: float = 600.0
    signature_tolerance_s: float = 300.0
    version_check_interval_s: float = 3.0
    auth_cache_s: float = 10.0
    sse_ping_interval_s: float = 5.0
    public_base_url: str | None = None
    static_root: Path | None = None


@dataclass(slots=True)
class _Exchange:
    """One request, its headers read once (`header_map`), and the route it reached once that
    is known (for its CORS headers)."""

    request: Request
    headers: dict[str, str]
    route: HttpRoute | None = None

    @property
    def cors(self) -> CorsPolicy:
        """The CORS policy of the answer."""
        return self.route.cors if self.route is not None else ANY


class RouteEndpoint:
    """Serves every route of the instance's route table."""

    def __init__(
        self,
        store: Store,
        options: RouteOptions | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self._store = store
        self._options = options or RouteOptions()
        self._rate_limiter = rate_limiter
        self.table = LiveRouteTable(store, check_interval_s=self._options.version_check_interval_s)
        self._jobs = RouteJobs(store)
        self._resources = ResourceReader(store, self._options.auth_cache_s)
        self._windmill = WindmillAuth(store, self._options.auth_cache_s)
        self._signatures = SignatureAuth(self._options.signature_tolerance_s)
        self._static = StaticFiles(self._options.static_root)

    async def close(self) -> None:
        """Stop listening for route changes, once the jobs being committed are."""
        await self._jobs.close()
        await self.table.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000})
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        exchange = _Exchange(request, header_map(request))
        try:
            response = await self._answer(exchange)
        except RouteMisconfigured as exc:
            logger.warning(
                "%s %s refused: %s",
                request.method,
                request.url.path,
                exc.reason,
                extra={"action": "route_misconfigured"},
            )
            response = refusal(exc)
        except RequestRefused as exc:
            response = refusal(exc)
        except ClientDisconnected:
            return
        except Exception:
            logger.exception(
                "%s %s failed", request.method, request.url.path, extra={"action": "route_failed"}
            )
            response = refusal(RequestRefused(500, "internal error while serving the route"))
        exchange.cors.apply(response, exchange.headers.get("origin"))
        await response(scope, receive, send)

    async def _answer(self, exchange: _Exchange) -> Response:
        request = exchange.request
        method = request.method.lower()
        if method == "head":
            return empty()
        if method == "options":
            return await self._options_answer(exchange)
        if method not in METHODS:
            raise RequestRefused(
                405, f"method {request.method} is not served on routes", {"Allow": ALL_METHODS}
            )
        path, segments = request_path(request.scope)
        found = await self._route(method, path, segments)
        exchange.route = found.route
        if self._rate_limiter and (wait := self._rate_limiter.retry_after(found.route.trigger)):
            raise RequestRefused(
                429,
                f"route {found.route.route_path} is over its rate limit",
                {"Retry-After": f"{wait}"},
            )
        admitted = await self._admit(found, exchange)
        if isinstance(admitted, Response):
            return admitted
        body, created_by = admitted
        info = HttpRequestInfo(
            route=found.route.route_path,
            path=path,
            method=method,
            params=found.params,
            query=dict(request.query_params) if request.scope.get("query_string") else {},
            headers=await self._job_headers(found.route, exchange.headers),
        )
        queued = await self._jobs.submit(
            found.route,
            body,
            info,
            created_by=created_by,
            idempotency_key=exchange.headers.get("idempotency-key"),
        )
        return await self._respond(found.route, queued, request.receive, created_by)

    async def _job_headers(self, route: HttpRoute, headers: dict[str, str]) -> dict[str, str]:
        """The headers the job sees: not those carrying the credentials checked here."""
        method = route.authentication_method
        resource = await self._resources.read(route) if method == "api_key" else None
        return without_credentials(headers, credential_headers(method, resource))

    async def _admit(
        self, found: RouteMatch, exchange: _Exchange
    ) -> tuple[ParsedBody, str] | Response:
        """The parsed body and who calls, once authenticated; or the answer itself: a
        provider's challenge, or a static route's file."""
        route = found.route
        request, headers = exchange.request, exchange.headers
        created_by = default_creator(route)
        if route.authentication_method == "windmill":
            created_by = await self._windmill.caller(route, request.headers, request.cookies)
        if not route.static and not route.row["script_path"]:
            raise RequestRefused(
                404, f"Runnable path of HTTP route at path: {route.route_path} is empty"
            )
        for option in _WEBHOOK_ONLY_OPTIONS if request.scope.get("query_string") else ():
            if option in request.query_params:
                raise RequestRefused(
                    400,
                    f"the {option} query option is not supported anymore on http routes, "
                    "please set it in the trigger config",
                )
        raw = await read_body(
            request.receive, self._options.max_body_bytes, headers.get("content-length")
        )
        # The reference's order: the body is parsed (400, 415) before the resource is checked.
        keep_raw = bool(route.row["raw_string"]) or route.authentication_method == "custom_script"
        body = (
            None
            if route.static
            else parse_body(headers.get("content-type"), raw, keep_raw=keep_raw)
        )
        challenge = None
        if route.authentication_method in _CHECKED_ON_THE_BODY:
            challenge = await self._authenticate(route, request, raw)
        if challenge is not None:
            return Response(challenge.body, 200, media_type=challenge.media_type)
        if body is None:
            subpath = found.params.get(route.subpath_param, "")
            return await self._static.serve(route, subpath, request.headers)
        return body, created_by

    async def _options_answer(self, exchange: _Exchange) -> Response:
        """A preflight (`Access-Control-Request-Method` and `Origin`) is answered against the
        route the browser means to call; any other OPTIONS with an empty 200."""
        request = exchange.request
        wanted = exchange.headers.get("access-control-request-method", "").lower()
        origin = exchange.headers.get("origin")
        if not wanted or origin is None:
            return empty()
        if wanted not in METHODS:
            raise RequestRefused(
                405, f"method {wanted.upper()} is not served on routes", {"Allow": ALL_METHODS}
            )
        path, segments = request_path(request.scope)
        exchange.route = (await self._route(wanted, path, segments)).route
        return exchange.route.cors.preflight(
            origin, exchange.headers.get("access-control-request-headers")
        )

    async def _respond(
        self, route: HttpRoute, queued: Enqueued, receive: Receive, created_by: str
    ) -> Response:
        """The answer once the job is committed, by the route's mode and request type."""
        if route.suspended:
            return suspended(route.trigger.path)
        if route.request_type == "async":
            return JobCreated(queued.job_id)
        workspace_id = route.trigger.workspace_id
        timeout_s = self._options.sync_timeout_s
        if route.request_type == "sync_sse":
            events = job_events(
                self._store,
                workspace_id,
                queued.job_id,
                timeout_s=timeout_s,
                ping_interval_s=self._options.sse_ping_interval_s,
            )
            return sse_response(events)
        try:
            job = await wait_while_connected(
                self._store, workspace_id, queued.job_id, receive, timeout_s
            )
        except ClientDisconnected:
            if queued.created:
                await self._cancel(route, queued.job_id, created_by)
            raise
        return result_response(job) if job is not None else timed_out(queued.job_id, timeout_s)

    async def _route(self, method: str, path: str, segments: list[str]) -> RouteMatch:
        table = await self.table.current()
        found = table.match(method, segments)
        if found is None:
            table = await self.table.confirm_miss()
            found = table.match(method, segments)
        if found is not None:
            return found
        allowed = [other.upper() for other in table.methods_matching(segments)]
        if allowed:
            raise RequestRefused(
                405,
                f"the route /api/r/{path} answers {', '.join(allowed)}, not {method.upper()}",
                {"Allow": ", ".join(allowed)},
            )
        raise RequestRefused(404, f"no HTTP route answers {method.upper()} /api/r/{path}")

    async def _authenticate(
        self, route: HttpRoute, request: Request, raw: bytes
    ) -> Challenge | None:
        """Check an `api_key`, `basic_http` or `signature` route's credentials; a provider's
        challenge to answer, if any."""
        method = route.authentication_method
        resource = await self._resources.read(route)
        if method == "api_key":
            check_api_key(resource, request.headers)
            return None
        if method == "basic_http":
            check_basic(resource, request.headers)
            return None
        signed = SignedRequest(
            headers=request.headers,
            body=raw,
            url=self._public_url(request),
            media_type=media_type(request.headers.get("content-type")),
        )
        return self._signatures.verify(str(route.trigger), resource, signed)

    def _public_url(self, request: Request) -> str:
        """The URL the caller requested, still percent-encoded, as a provider signs it (Twilio).

        Behind a proxy that rewrites the scheme or host, set the public base URL.
        """
        base = self._options.public_base_url
        if base is None:
            base = f"{request.url.scheme}://{request.headers.get('host', '')}"
        scope = request.scope
        path = scope.get("raw_path") or scope["path"].encode()
        url = base.rstrip("/") + path.decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        return f"{url}?{query}" if query else url

    async def _cancel(self, route: HttpRoute, job_id: UUID, canceled_by: str) -> None:
        try:
            async with self._store.transaction() as tx:
                await cancel_job(
                    tx, route.trigger.workspace_id, job_id, canceled_by, CONNECTION_BROKE
                )
        except NotFound:
            return  # it completed meanwhile
        logger.info(
            "http route %s: job %s canceled: %s",
            route.trigger,
            job_id,
            CONNECTION_BROKE,
            extra={"action": "job_canceled", "trigger": str(route.trigger), "kind": "http"},
        )


def request_path(scope: Scope) -> tuple[str, list[str]]:
    """The request path after the mount point (decoded, without the trailing `/`), and its
    segments, each decoded on its own so that an encoded `/` stays inside its segment."""
    root = scope.get("root_path", "").rstrip("/")
    raw = scope.get("raw_path")
    if raw is not None and b"%" in raw:  # else the decoded path is the raw one
        root_parts = root.split("/")
        raw_parts = raw.decode("latin-1").split("/")
        if [unquote(part) for part in raw_parts[: len(root_parts)]] == root_parts:
            parts = [unquote(part) for part in raw_parts[len(root_parts) :]]
            return _trimmed(parts)
    path: str = scope["path"]
    return _trimmed(path[len(root) :].split("/")[1:] if path.startswith(root) else [])


def _trimmed(parts: list[str]) -> tuple[str, list[str]]:
    while parts and not parts[-1]:
        parts.pop()
    return "/".join(parts), parts


def header_map(request: Request) -> dict[str, str]:
    """Every request header by (lowercase) name; repeated headers joined with `, `, so that a
    header that may appear once (`Content-Type`, `Origin`) and came twice reads as what it is:
    neither value alone."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers

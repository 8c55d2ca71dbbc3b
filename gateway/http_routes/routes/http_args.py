"""The job args of an HTTP route request (reference 4.9) and of a webhook request (4.10), in
the runnable's format.

HTTP routes:

====================  =========================================================================
no preprocessor       the parsed body (``wrap_body``: ``{"body": <body>}``) plus ``raw_string``
                      when kept; headers, query and path parameters are not passed
V2 preprocessor       ``{"event": {"kind": "http", "route", "path", "method", "params", "query",
                      "headers", "body", "raw_string"}}``
V1 preprocessor       the args without a preprocessor, plus
                      ``{"wm_trigger": {"kind": "http", "http": {"route", "path", "method",
                      "params", "query", "headers"}}}``
====================  =========================================================================

Webhooks (the query options `wrap_body`, `raw`, `include_header`, `include_query`):

====================  =========================================================================
no preprocessor       the parsed body (``wrap_body``: ``{"body": <body>}``), ``raw_string`` with
                      ``raw``, each included header as an arg named in lowercase with ``-`` as
                      ``_``, each included query parameter as a string arg
V2 preprocessor       ``{"event": {"kind": "webhook", "body", "raw_string", "headers",
                      "query"}}``
V1 preprocessor       the args without a preprocessor, plus ``{"wm_trigger": {"kind":
                      "webhook"}}``
====================  =========================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.http_routes.routes.body import CLOUDEVENT_METADATA_KEY, ParsedBody
from gateway.triggers.args import ArgsFormat, RunnableShape, detect_format


@dataclass(frozen=True, slots=True)
class HttpRequestInfo:
    """What a preprocessor learns about the request besides its body."""

    route: str
    path: str
    method: str
    params: Mapping[str, str]
    query: Mapping[str, str]
    headers: Mapping[str, str]

    def as_json(self) -> dict[str, Any]:
        """The `http` trigger info map."""
        return {
            "route": self.route,
            "path": self.path,
            "method": self.method,
            "params": dict(self.params),
            "query": dict(self.query),
            "headers": dict(self.headers),
        }


@dataclass(frozen=True, slots=True)
class WebhookRequestInfo:
    """What a webhook request adds to its body: every header and query parameter, and the
    ones its query options pass on as args."""

    headers: Mapping[str, str]
    query: Mapping[str, str]
    include_headers: tuple[str, ...] = ()
    include_query: tuple[str, ...] = ()
    wrap_body: bool = False


def build_webhook_args(
    body: ParsedBody, info: WebhookRequestInfo, shape: RunnableShape
) -> dict[str, Any]:
    """The job args of one webhook request to a runnable of `shape` (give a shape without a
    preprocessor when the preprocessor is skipped)."""
    if shape.has_preprocessor and detect_format("webhook", shape) is ArgsFormat.V2:
        return {
            "event": {
                "kind": "webhook",
                "body": body.args,
                "raw_string": body.raw_string,
                "headers": dict(info.headers),
                "query": dict(info.query),
            }
        }
    args = _body_args(body, wrap_body=info.wrap_body)
    for name in info.include_headers:
        if (value := info.headers.get(name.lower())) is not None:
            args[name.lower().replace("-", "_")] = value
    for name in info.include_query:
        if (value := info.query.get(name)) is not None:
            args[name] = value
    if shape.has_preprocessor:
        args["wm_trigger"] = {"kind": "webhook"}
    return args


def build_http_args(
    body: ParsedBody, info: HttpRequestInfo, shape: RunnableShape, *, wrap_body: bool
) -> dict[str, Any]:
    """The job args of one request to a runnable of `shape`."""
    if shape.has_preprocessor and detect_format("http", shape) is ArgsFormat.V2:
        return {
            "event": {
                "kind": "http",
                **info.as_json(),
                "body": body.args,
                "raw_string": body.raw_string,
            }
        }
    args = _body_args(body, wrap_body=wrap_body)
    if shape.has_preprocessor:
        args["wm_trigger"] = {"kind": "http", "http": info.as_json()}
    return args


def _body_args(body: ParsedBody, *, wrap_body: bool) -> dict[str, Any]:
    """The args of a body for a runnable without a preprocessor."""
    args: dict[str, Any] = {"body": body.args} if wrap_body else dict(body.args)
    if body.raw_string is not None:
        args["raw_string"] = body.raw_string
    if body.metadata is not None:
        args[CLOUDEVENT_METADATA_KEY] = body.metadata
    return args

"""The job args of an HTTP route request, in the runnable's format (reference 4.9).

====================  =========================================================================
no preprocessor       the parsed body (``wrap_body``: ``{"body": <body>}``) plus ``raw_string``
                      when kept; headers, query and path parameters are not passed
V2 preprocessor       ``{"event": {"kind": "http", "route", "path", "method", "params", "query",
                      "headers", "body", "raw_string"}}``
V1 preprocessor       the args without a preprocessor, plus
                      ``{"wm_trigger": {"kind": "http", "http": {"route", "path", "method",
                      "params", "query", "headers"}}}``
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
    args: dict[str, Any] = {"body": body.args} if wrap_body else dict(body.args)
    if body.raw_string is not None:
        args["raw_string"] = body.raw_string
    if body.metadata is not None:
        args[CLOUDEVENT_METADATA_KEY] = body.metadata
    if shape.has_preprocessor:
        args["wm_trigger"] = {"kind": "http", "http": info.as_json()}
    return args

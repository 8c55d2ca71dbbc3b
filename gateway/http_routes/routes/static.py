"""Static files of routes, from a directory under the instance's static root
(`GATEWAY_STATIC_ROOT`).

A route's `static_asset_config` is `{"directory": "<path under the root>", "filename"?: ...}`:

* a static website (`is_static_website`) serves `<route>` as `<directory>/index.html` and
  `<route>/<subpath>` as `<directory>/<subpath>` (a folder's `index.html` for a folder); a missing
  file falls back to `<directory>/index.html`, so that a single-page app owns its paths;
* a single asset serves `<directory>/<filename>` with `Content-Disposition: inline;
  filename="<filename>"`.

Nothing outside the static root is ever served: `.` and `..` segments are refused, and a path
whose symbolic links lead out of the root counts as missing. Every file carries an `ETag`; a
request whose `If-None-Match` names it gets a 304. Configs naming object storage (`s3`) are
refused: this gateway has none.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from starlette.responses import FileResponse, Response

from gateway.http_routes.routes.errors import RequestRefused, RouteMisconfigured
from gateway.http_routes.routes.table import HttpRoute

INDEX: Final = "index.html"
_FORBIDDEN_SEGMENTS: Final = (".", "..")


@dataclass(frozen=True, slots=True)
class _Found:
    path: Path
    stat: os.stat_result


def etag_of(stat: os.stat_result) -> str:
    """The strong ETag of a file's current version (modification time and size)."""
    return f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether an `If-None-Match` header names `etag` (weakly compared, as HTTP says)."""
    if if_none_match is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def subpath_parts(subpath: str) -> list[str]:
    """The segments of a requested subpath; 400 for `.`, `..` or a backslash, which could
    otherwise step out of the website's directory."""
    parts = [part for part in subpath.split("/") if part]
    for part in parts:
        if part in _FORBIDDEN_SEGMENTS or "\\" in part or "\x00" in part:
            raise RequestRefused(400, f"the path segment {part!r} is not allowed in a static path")
    return parts


class StaticFiles:
    """Serves the static routes from files under `root` (None: static routes are refused)."""

    def __init__(self, root: Path | None) -> None:
        self._root = root

    async def serve(self, route: HttpRoute, subpath: str, headers: Mapping[str, str]) -> Response:
        """The file `route` serves for `subpath` (websites only), or 304 when the client has it."""
        config = self._config(route)
        directory = str(config["directory"])
        filename = config.get("filename")
        if route.website:
            parts = subpath_parts(subpath)
        elif isinstance(filename, str) and filename:
            parts = [filename]
        else:
            raise RouteMisconfigured(
                f"the static asset of route {route.trigger} names no filename in its directory"
            )
        assert self._root is not None
        found = await asyncio.to_thread(_locate, self._root, directory, parts, route.website)
        if found is None:
            raise RequestRefused(404, f"no static file at /api/r/{_shown(route, subpath)}")
        etag = etag_of(found.stat)
        if not_modified(headers.get("if-none-match"), etag):
            return Response(status_code=304, headers={"etag": etag})
        media_type = mimetypes.guess_type(found.path.name)[0] or "application/octet-stream"
        return FileResponse(
            found.path,
            headers={"etag": etag},
            media_type=media_type,
            filename=None if route.website else str(filename),
            stat_result=found.stat,
            content_disposition_type="inline",
        )

    def _config(self, route: HttpRoute) -> Mapping[str, Any]:
        config = route.row.get("static_asset_config")
        if not isinstance(config, Mapping) or not config.get("directory"):
            if isinstance(config, Mapping) and config.get("s3"):
                raise RequestRefused(
                    501,
                    "static assets in object storage are not served by this gateway: "
                    'give static_asset_config {"directory": ...} under the static root',
                )
            raise RouteMisconfigured(
                f"route {route.trigger} serves static files but names no directory"
            )
        if self._root is None:
            raise RouteMisconfigured(
                f"route {route.trigger} serves static files, but GATEWAY_STATIC_ROOT is not set"
            )
        return config


def _shown(route: HttpRoute, subpath: str) -> str:
    return f"{route.route_path}/{subpath}".rstrip("/")


def _locate(root: Path, directory: str, parts: list[str], website: bool) -> _Found | None:
    """The file for `parts` inside `root/directory` (blocking: run in a thread)."""
    real_root = root.resolve()
    base = (real_root / directory).resolve()
    if not base.is_relative_to(real_root):
        return None
    candidates = [base.joinpath(*parts)]
    if website:
        candidates += [candidates[0] / INDEX, base / INDEX]
    for candidate in candidates:
        real = candidate.resolve()
        if real.is_relative_to(real_root) and real.is_file():
            return _Found(real, real.stat())
    return None

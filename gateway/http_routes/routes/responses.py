"""The answers of `/api/r/...` (CORS headers are added by `cors.py`): refusals, job ids, and a
sync job's result mapped to a response (webhooks use the mapping too).

Result mapping (a completed job as `gateway.jobs.read.job_json` gives it):

* a result object with any of `windmill_status_code`, `windmill_content_type`,
  `windmill_headers` (or the `wm_` spellings): status = that code, else 422 for a failed job,
  200 when the object has a `result` key, 204 otherwise; its headers are added; with a content
  type the body is `result` as text (a string as is, anything else as JSON), without one the
  JSON of `result` (empty without it);
* any other result: its JSON, 200 (422 for a failed job); a successful job with a null result
  answers 204, with no body.

Webhooks answer a failed job with 500 instead of 422, as Windmill does (`failed_status`).

A 204 or 304 carries no body. A status code (200-599), header name or header value the job
cannot legally set makes a 500 saying which.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final
from uuid import UUID

from starlette.responses import Response

from gateway.http_routes.routes.errors import RequestRefused

_SPECIAL_KEYS: Final = {
    "status": ("windmill_status_code", "wm_status_code"),
    "content_type": ("windmill_content_type", "wm_content_type"),
    "headers": ("windmill_headers", "wm_headers"),
}
_BODILESS: Final = (204, 304)
_TEXT_PLAIN: Final = (b"content-type", b"text/plain; charset=utf-8")
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE: Final = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def refusal(exc: RequestRefused) -> Response:
    """`{"error": reason}` with the refusal's status and headers."""
    return json_response({"error": exc.reason}, exc.status, exc.headers)


def json_response(
    value: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """`value` as compact JSON."""
    return Response(_compact(value), status, dict(headers or {}), media_type="application/json")


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def empty() -> Response:
    """An empty 200 (HEAD and OPTIONS)."""
    return Response(status_code=200)


class JobCreated(Response):
    """201 with the job id as text (an `async` route). Every async request ends here, so its
    headers are written out directly instead of derived as `Response` does for any content."""

    def __init__(self, job_id: UUID) -> None:
        self.status_code = 201
        self.background = None
        self.body = str(job_id).encode()
        self.raw_headers = [(b"content-length", b"%d" % len(self.body)), _TEXT_PLAIN]


def suspended(trigger_path: str) -> Response:
    """200 text: the job was queued, parked until the trigger is resumed."""
    message = (
        f"Trigger {trigger_path} is in suspended mode, jobs are added to the queue but suspended"
    )
    return Response(message, 200, media_type="text/plain")


def timed_out(job_id: UUID, timeout_s: float) -> Response:
    """504 naming the job, whose result can be read later."""
    body = {
        "error": f"timeout after {timeout_s:g}s waiting for job {job_id}",
        "job_id": str(job_id),
    }
    return json_response(body, 504)


def result_response(job: Mapping[str, Any], failed_status: int = 422) -> Response:
    """A completed job's response (see the module docstring); a failed job's status, unless the
    result sets one, is `failed_status`."""
    result = job["result"]
    failed = not job["success"]
    special = (
        {field: _first(result, keys) for field, keys in _SPECIAL_KEYS.items()}
        if isinstance(result, dict)
        else {}
    )
    if not any(value is not None for value in special.values()):
        if result is None and not failed:
            return Response(status_code=204)
        return json_response(result, failed_status if failed else 200)
    assert isinstance(result, dict)
    has_result = "result" in result
    status = _status(special["status"], failed_status if failed else None, has_result)
    headers = _headers(special["headers"])
    if status in _BODILESS:
        return Response(status_code=status, headers=headers)
    content_type = special["content_type"]
    if content_type is not None:
        if not isinstance(content_type, str) or not _HEADER_VALUE.fullmatch(content_type):
            raise RequestRefused(500, "the job's windmill_content_type is not a valid header value")
        inner = result.get("result")
        text = "" if not has_result else inner if isinstance(inner, str) else _compact(inner)
        headers["content-type"] = content_type
        return Response(text, status, headers)
    if not has_result:
        return Response(status_code=status, headers=headers)
    return json_response(result["result"], status, headers)


def _first(result: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    return next((result[key] for key in keys if result.get(key) is not None), None)


def _status(code: Any, failed_status: int | None, has_result: bool) -> int:
    if code is None:
        return failed_status or (200 if has_result else 204)
    if isinstance(code, bool) or not isinstance(code, int) or not 200 <= code <= 599:
        raise RequestRefused(500, f"the job's windmill_status_code {code!r} is not an HTTP status")
    return code


def _headers(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestRefused(500, "the job's windmill_headers is not an object")
    headers: dict[str, str] = {}
    for name, text in value.items():
        if not _HEADER_NAME.fullmatch(name) or not isinstance(text, str):
            raise RequestRefused(500, f"the job's windmill_headers has an invalid header {name!r}")
        if not _HEADER_VALUE.fullmatch(text):
            raise RequestRefused(500, f"the job's windmill_headers has an invalid value for {name}")
        headers[name.lower()] = text
    return headers

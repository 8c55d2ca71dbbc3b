"""How the API reports errors: the project's exception tree, mapped once, to JSON.

InvalidInput          -> 400 {"error": {"field", "reason"}, "message"}
Forbidden             -> 403 {"error": {"reason"}, "message"}
NotFound              -> 404
Conflict              -> 409
HTTPException         -> its own status (401 without a valid token, unknown route, method)
DatabaseUnavailable   -> 503
any other error       -> 500; the body does not repeat its details, the log has them
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import (
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    GatewayError,
    InvalidInput,
    NotFound,
)

logger = logging.getLogger(__name__)

ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]

STATUS_OF: Mapping[type[GatewayError], int] = {
    InvalidInput: 400,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    DatabaseUnavailable: 503,
}
"""The status of each error the API expects; a subclass takes its nearest listed base's."""


def error_response(
    status: int, reason: str, field: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The one error body: what went wrong (and where, for bad input), and a line for people."""
    error: dict[str, Any] = {"reason": reason}
    if field is not None:
        error = {"field": field, "reason": reason}
    message = f"{field}: {reason}" if field else reason
    return JSONResponse({"error": error, "message": message}, status, headers=headers)


async def gateway_error(request: Request, exc: Exception) -> Response:
    """A deliberate error of the gateway, with the status its class stands for."""
    assert isinstance(exc, GatewayError)
    if isinstance(exc, InvalidInput):
        return error_response(400, exc.reason, field=exc.field or "body")
    status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), None)
    if status is None:
        logger.error(
            "%s %s failed: %s",
            request.method,
            request.url.path,
            exc,
            exc_info=exc,
            extra={"action": "api_error"},
        )
        return await unexpected_error(request, exc)
    return error_response(status, str(exc))


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no route, wrong method) and the 401 of a missing token."""
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """A bug: answered without its details (the server logs the exception, re-raised to it)."""
    return error_response(500, "internal error; the gateway log has the details")


HANDLERS: Mapping[Any, ExceptionHandler] = {
    GatewayError: gateway_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}

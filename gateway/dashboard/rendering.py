"""Pages from the Jinja2 templates beside this module: autoescaped, strict about missing values,
and sent with headers that keep them out of caches and frames and forbid inline scripts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import jinja2
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from gateway.dashboard.access import TOKEN_COOKIE, SignInRequired, dashboard_root, forget_token
from gateway.errors import GatewayError
from gateway.http_routes.api.errors import STATUS_OF, ExceptionHandler

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
"""Pages show logs and payloads: nothing may be cached, framed, or run from inline script."""

_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("gateway.dashboard", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates = Jinja2Templates(env=_environment)


def page_path(request: Request, name: str, /, **params: Any) -> str:
    """The path of the dashboard route `name`, below where the dashboard is mounted."""
    return dashboard_root(request) + str(request.app.url_path_for(name, **params))


@jinja2.pass_context
def _page_path_of_template(context: jinja2.runtime.Context, name: str, /, **params: Any) -> str:
    return page_path(context["request"], name, **params)


def utc_text(moment: datetime) -> str:
    """A time as people read it on every page: `2025-01-31 17:04:05 UTC`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_environment.globals["page_path"] = _page_path_of_template
_environment.filters["utc"] = utc_text


def render(
    request: Request, template: str, context: Mapping[str, Any], status_code: int = 200
) -> Response:
    """The page `template` filled with `context`, with the dashboard's security headers."""
    return templates.TemplateResponse(
        request, template, dict(context), status_code=status_code, headers=SECURITY_HEADERS
    )


def sign_in_page(request: Request, reason: str, back: str, status_code: int = 401) -> Response:
    """The sign-in form saying `reason`, returning to the page `back` once signed in."""
    return render(
        request, "sign_in.html", {"reason": reason, "next": back}, status_code=status_code
    )


async def sign_in_required(request: Request, exc: Exception) -> Response:
    """No usable token: the sign-in form, in place of the page (and the stale cookie dropped)."""
    assert isinstance(exc, SignInRequired)
    back = request.url.path if request.method == "GET" else ""
    response = sign_in_page(request, str(exc.detail), back)
    if request.cookies.get(TOKEN_COOKIE) is not None:
        forget_token(response, request)
    return response


async def gateway_error(request: Request, exc: Exception) -> Response:
    """A deliberate error of the gateway (not found, forbidden, bad input) as a page."""
    assert isinstance(exc, GatewayError)
    status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), None)
    if status is None:
        raise exc  # a bug: `unexpected_error` answers, the server logs it
    return render(request, "error.html", {"status": status, "reason": str(exc)}, status)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's errors (no such page, wrong method, refused form) as a page."""
    assert isinstance(exc, HTTPException)
    return render(
        request,
        "error.html",
        {"status": exc.status_code, "reason": str(exc.detail)},
        exc.status_code,
    )


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """A bug: a page without its details (the server logs the exception)."""
    reason = "internal error; the gateway log has the details"
    return render(request, "error.html", {"status": 500, "reason": reason}, 500)


EXCEPTION_HANDLERS: Final[Mapping[Any, ExceptionHandler]] = {
    SignInRequired: sign_in_required,
    GatewayError: gateway_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}

"""Who may see the dashboard: the API's tokens, sent as a bearer header or kept in a cookie.

A browser signs in once with a token; the dashboard keeps it in an HttpOnly cookie scoped to
its own paths. Every request then resolves the token exactly as the API does (the API's own
lookup functions run on a view of the request whose `Authorization` header carries it), so a
token the API refuses is refused here, and a workspace it cannot see is absent here too.

Forms are the only writes. They are accepted only from the dashboard's own origin (the `Origin`
header, or `Referer` when a browser sends no `Origin`), so another site cannot make a signed-in
browser redrive an event; the cookie is also `SameSite=Lax`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Final
from urllib.parse import parse_qsl, urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.http_routes.api.auth import Caller, Token, authenticate, workspace_caller

TOKEN_COOKIE: Final = "gateway_token"
MAX_FORM_BYTES: Final = 16 * 1024
"""The dashboard's forms carry a token and a few fields; anything larger is refused."""


class SignInRequired(HTTPException):
    """The request carries no token, or one the API does not accept: show the sign-in form."""

    def __init__(self, reason: str) -> None:
        super().__init__(401, reason, {"WWW-Authenticate": "Bearer"})


def _as_bearer(request: Request, token: str | None = None) -> Request:
    """The request as the API's lookup reads it: the cookie's token (or `token`) as its bearer.

    The query string is dropped so that a token in a dashboard URL (`?token=`, which the API
    accepts for webhooks) is never honoured: URLs end up in histories and proxy logs.
    """
    headers = list(request.scope["headers"])
    if token is None and "authorization" not in request.headers:
        token = request.cookies.get(TOKEN_COOKIE)
        if not token:
            raise SignInRequired("sign in with an API token")
    if token is not None:
        headers = [(name, value) for name, value in headers if name != b"authorization"]
        # A token is ASCII; anything else cannot match one and is looked up as garbled text.
        headers.append((b"authorization", f"Bearer {token}".encode("latin-1", "replace")))
    return Request({**request.scope, "headers": headers, "query_string": b""})


@contextmanager
def _sign_in_when_refused() -> Iterator[None]:
    """The API's 401 (no token, unknown or expired token) as the sign-in form."""
    try:
        yield
    except HTTPException as exc:
        if exc.status_code == 401:
            raise SignInRequired(str(exc.detail)) from None
        raise


async def signed_in_token(request: Request, token: str | None = None) -> Token:
    """The caller's live token (or `token`, when signing in); SignInRequired when refused."""
    with _sign_in_when_refused():
        return await authenticate(_as_bearer(request, token))


async def dashboard_caller(request: Request) -> Caller:
    """The caller of a `/w/{workspace}/...` page, resolved as the API resolves it."""
    with _sign_in_when_refused():
        return await workspace_caller(_as_bearer(request))


def keep_token(response: Response, request: Request, token: str) -> None:
    """Store `token` in the sign-in cookie: HttpOnly, SameSite=Lax, for the dashboard only.

    It is `Secure` when the page was served over HTTPS, as the browser or `public_base_url`
    says (a proxy that ends TLS hides it from the request).
    """
    public = request.app.state.gateway.settings.public_base_url or ""
    response.set_cookie(
        TOKEN_COOKIE,
        token,
        path=dashboard_root(request) or "/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https" or public.startswith("https://"),
    )


def forget_token(response: Response, request: Request) -> None:
    """Remove the sign-in cookie."""
    response.delete_cookie(TOKEN_COOKIE, path=dashboard_root(request) or "/")


def dashboard_root(request: Request) -> str:
    """The path the dashboard is mounted at (`/ui`), as seen from inside it."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def require_same_origin(request: Request) -> None:
    """403 unless the form was sent by a page of this host (CSRF protection).

    Only the host and port are compared, not the scheme: behind a proxy that ends TLS the
    gateway sees `http` while the browser says `https`. A proxy that rewrites `Host` is covered
    by `public_base_url`, whose host is accepted as well.
    """
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        raise HTTPException(403, "a form must be sent from the dashboard's own pages")
    ours = {request.headers.get("host", "").lower()}
    if public := request.app.state.gateway.settings.public_base_url:
        ours.add(urlsplit(public).netloc.lower())
    if urlsplit(source).netloc.lower() not in ours:
        raise HTTPException(403, "a form from another site is refused")


async def read_form(request: Request) -> Mapping[str, str]:
    """The fields of an `application/x-www-form-urlencoded` body (the only kind a page sends)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise HTTPException(415, "send the form as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, f"a form is at most {MAX_FORM_BYTES} bytes")
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))

"""Signing in and out, and the first page: the workspaces the token may open."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.dashboard.access import (
    SignInRequired,
    dashboard_root,
    forget_token,
    keep_token,
    read_form,
    require_same_origin,
    signed_in_token,
)
from gateway.dashboard.rendering import page_path, render, sign_in_page
from gateway.http_routes.api.context import store_of


def return_path(request: Request, wanted: str | None) -> str:
    """Where to go once signed in: `wanted` if it is a dashboard page, else the first page.

    Anything else (another site, `//host`, a path outside the dashboard) is ignored, so the
    sign-in form cannot be used to send someone elsewhere.
    """
    root = dashboard_root(request)
    if (
        wanted
        and wanted.startswith(f"{root}/")
        and "//" not in wanted
        and "\\" not in wanted
        and not any(ord(char) < 0x20 for char in wanted)
    ):
        return wanted
    return page_path(request, "ui_home")


async def sign_in_form(request: Request) -> Response:
    """The sign-in form."""
    return sign_in_page(request, "", request.query_params.get("next", ""), status_code=200)


async def sign_in(request: Request) -> Response:
    """Check the token as the API would, keep it in the cookie, and go back to the page."""
    require_same_origin(request)
    form = await read_form(request)
    token = form.get("token", "").strip()
    back = form.get("next", "")
    if not token:
        return sign_in_page(request, "enter an API token", back, status_code=400)
    try:
        await signed_in_token(request, token)
    except SignInRequired as exc:
        return sign_in_page(request, str(exc.detail), back)
    response = RedirectResponse(return_path(request, back), status_code=303)
    keep_token(response, request, token)
    return response


async def sign_out(request: Request) -> Response:
    """Forget the token and show the sign-in form."""
    require_same_origin(request)
    response = RedirectResponse(page_path(request, "ui_sign_in"), status_code=303)
    forget_token(response, request)
    return response


async def home(request: Request) -> Response:
    """The workspaces the token may open (every one for a super admin)."""
    token = await signed_in_token(request)
    async with store_of(request).transaction() as tx:
        if token.super_admin:
            rows = await tx.fetch_all("list_workspaces")
        else:
            rows = await tx.fetch_all("api_list_workspaces_of_email", email=token.email)
    workspaces = [row for row in rows if token.workspace_id in (None, row["id"])]
    return render(request, "workspaces.html", {"workspaces": workspaces, "user": token.username})

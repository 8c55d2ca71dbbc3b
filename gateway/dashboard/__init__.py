"""The status dashboard, served under `/ui`: server-rendered pages for the people who run the
gateway. Triggers with their health, recent failed jobs with their logs, and the quarantine with
a redrive button, behind the API's own tokens.

`access` resolves who is calling (bearer header or sign-in cookie) and guards forms against other
sites; `rendering` fills the Jinja2 templates; one module per page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.dashboard.jobs_page import failed_jobs_page
from gateway.dashboard.quarantine_page import quarantine_page, redrive_event
from gateway.dashboard.rendering import EXCEPTION_HANDLERS
from gateway.dashboard.session import home, sign_in, sign_in_form, sign_out
from gateway.dashboard.triggers_page import triggers_page

if TYPE_CHECKING:
    from gateway.runtime import Gateway


def build_dashboard(gateway: Gateway) -> Starlette:
    """The dashboard application of `gateway`, to mount at `/ui`."""
    dashboard = Starlette(
        routes=[
            Route("/", home, methods=["GET"], name="ui_home"),
            Route("/sign-in", sign_in_form, methods=["GET"], name="ui_sign_in"),
            Route("/sign-in", sign_in, methods=["POST"], name="ui_sign_in_submit"),
            Route("/sign-out", sign_out, methods=["POST"], name="ui_sign_out"),
            Route("/w/{workspace}/", triggers_page, methods=["GET"], name="ui_triggers"),
            Route(
                "/w/{workspace}/failed-jobs", failed_jobs_page, methods=["GET"], name="ui_failed"
            ),
            Route(
                "/w/{workspace}/quarantine", quarantine_page, methods=["GET"], name="ui_quarantine"
            ),
            Route(
                "/w/{workspace}/quarantine/{id}/redrive",
                redrive_event,
                methods=["POST"],
                name="ui_redrive",
            ),
            Mount(
                "/static",
                app=StaticFiles(packages=[("gateway.dashboard", "static")]),
                name="ui_static",
            ),
        ],
        exception_handlers=dict(EXCEPTION_HANDLERS),
    )
    dashboard.state.gateway = gateway
    return dashboard


__all__ = ["build_dashboard"]

"""Trigger URLs checked against the network guard when a trigger is written (HTTP 400)."""

from __future__ import annotations

from starlette.requests import Request

from gateway.errors import DestinationBlocked, InvalidInput
from gateway.http_routes.api.trigger_bodies import TriggerBody, WebsocketBody
from gateway.net_guard import NetGuard


def check_destination(request: Request, body: TriggerBody) -> None:
    """InvalidInput on `url` when a WebSocket trigger's URL names a host the guard refuses.

    A ``$script:``/``$flow:`` URL is known only when the listener runs it; it is checked then.
    """
    if not isinstance(body, WebsocketBody) or not body.url.startswith(("ws://", "wss://")):
        return
    guard = NetGuard.from_settings(request.app.state.gateway.settings)
    try:
        guard.check_url(body.url)
    except DestinationBlocked as exc:
        raise InvalidInput("url", str(exc)) from None

"""Alert notices sent outside the gateway: a Slack-compatible incoming webhook.

The webhook gets `POST {"text": "..."}`, which Slack, Mattermost, Rocket.Chat and most chat tools
accept. A notice that cannot be delivered is logged and dropped: the `alerts` table keeps the
incident either way, and a slow chat server must never hold up the alert rules.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from gateway.errors import DestinationBlocked
from gateway.net_guard import NetGuard

logger = logging.getLogger(__name__)


class Notifier(Protocol):
    """Where alert notices go besides the `alerts` table."""

    async def notify(self, text: str) -> None:
        """Deliver one notice; never raises."""
        ...


class WebhookNotifier:
    """Posts each notice to a Slack-compatible webhook at `url`."""

    def __init__(self, url: str, timeout_s: float = 5.0, guard: NetGuard | None = None) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._guard = guard or NetGuard()
        # The URL of a chat webhook is its secret: log lines name the host only.
        self._host = urlsplit(url).hostname or "the webhook"

    async def notify(self, text: str) -> None:
        """Post `{"text": text}`; a failure is logged, not raised."""
        problem: str | None = None
        try:
            request = await guarded_request(self._guard, self._url, {"text": text})
            async with httpx.AsyncClient(timeout=self._timeout_s, trust_env=False) as client:
                response = await client.send(request)
            if response.is_error:
                problem = f"it answered HTTP {response.status_code}"
        except httpx.InvalidURL:
            problem = "the webhook URL is not valid"
        except DestinationBlocked as exc:
            problem = f"the network guard refuses it: {exc}"
        except OSError as exc:
            problem = f"its host does not resolve: {exc}"
        except httpx.HTTPError as exc:
            # Transport errors name the failure, not the URL.
            problem = f"{type(exc).__name__}: {exc}"
        if problem is not None:
            logger.warning(
                "alert notice not delivered to %s: %s",
                self._host,
                problem,
                extra={"action": "notice_failed"},
            )


async def guarded_request(guard: NetGuard, url: str, body: Any) -> httpx.Request:
    """A JSON POST to `url` sent to the address the guard checked, not resolved again later.

    The URL's host stays in the Host header and in TLS (server name and certificate check). No
    proxy and no redirect is followed: both would connect elsewhere.
    """
    target = httpx.URL(url)
    if target.scheme not in ("http", "https") or not target.host:
        raise httpx.InvalidURL(f"not an http(s) URL: {target.scheme}")
    port = target.port or (443 if target.scheme == "https" else 80)
    address = await guard.resolve(target.host, port)
    return httpx.Request(
        "POST",
        target.copy_with(host=address),
        json=body,
        headers={"Host": target.netloc.decode("ascii").rpartition("@")[2]},
        extensions={"sni_hostname": target.host},
    )

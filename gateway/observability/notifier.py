"""Alert notices sent outside the gateway: a Slack-compatible incoming webhook.

The webhook gets `POST {"text": "..."}`, which Slack, Mattermost, Rocket.Chat and most chat tools
accept. A notice that cannot be delivered is logged and dropped: the `alerts` table keeps the
incident either way, and a slow chat server must never hold up the alert rules.
"""

from __future__ import annotations

import logging
from typing import Protocol
from urllib.parse import urlsplit

import httpx

logger = logging.getLogger(__name__)


class Notifier(Protocol):
    """Where alert notices go besides the `alerts` table."""

    async def notify(self, text: str) -> None:
        """Deliver one notice; never raises."""
        ...


class WebhookNotifier:
    """Posts each notice to a Slack-compatible webhook at `url`."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self._url = url
        self._timeout_s = timeout_s
        # The URL of a chat webhook is its secret: log lines name the host only.
        self._host = urlsplit(url).hostname or "the webhook"

    async def notify(self, text: str) -> None:
        """Post `{"text": text}`; a failure is logged, not raised."""
        problem: str | None = None
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s) as client:
                response = await client.post(self._url, json={"text": text})
            if response.is_error:
                problem = f"it answered HTTP {response.status_code}"
        except httpx.InvalidURL:
            problem = "the webhook URL is not valid"
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

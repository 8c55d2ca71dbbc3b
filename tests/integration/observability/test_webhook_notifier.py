"""Alert notices posted to a Slack-compatible webhook: a local HTTP server of the test's own."""

from __future__ import annotations

import logging
import socket

import pytest

from gateway.observability.notifier import WebhookNotifier

from .support import webhook_receiver

pytestmark = pytest.mark.integration


async def test_a_notice_is_posted_as_slack_json() -> None:
    with webhook_receiver() as receiver:
        await WebhookNotifier(receiver.url).notify("[gateway] FIRING trigger_in_error: x")
    assert receiver.bodies == [{"text": "[gateway] FIRING trigger_in_error: x"}]


async def test_a_refusing_server_is_logged_without_its_url_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with webhook_receiver() as receiver:
        receiver.status = 500
        with caplog.at_level(logging.WARNING, logger="gateway.observability.notifier"):
            await WebhookNotifier(receiver.url).notify("lost")
    (line,) = [r for r in caplog.records if getattr(r, "action", None) == "notice_failed"]
    assert "500" in line.getMessage()
    assert "/hooks/alerts" not in line.getMessage()


async def test_an_unreachable_server_never_raises() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await WebhookNotifier(f"http://127.0.0.1:{port}/hook", timeout_s=2).notify("lost")

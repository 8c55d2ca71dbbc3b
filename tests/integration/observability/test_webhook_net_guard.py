"""The alert webhook behind the network guard: a local HTTP server of the test's own."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest

from gateway.net_guard import HostList, NetGuard
from gateway.observability.notifier import WebhookNotifier

from .support import webhook_receiver

pytestmark = pytest.mark.integration


def failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if getattr(r, "action", "") == "notice_failed"]


async def test_a_link_local_webhook_is_refused_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway.observability.notifier"):
        await WebhookNotifier("http://169.254.169.254/hook", timeout_s=2).notify("lost")

    [failure] = failures(caplog)
    assert "the network guard refuses it: 169.254.169.254 is a link-local address" in failure


async def test_a_webhook_name_resolving_to_a_denied_address_gets_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deny_loopback = NetGuard(deny=HostList.parse(["127.0.0.0/8", "::1"], "deny"))
    with webhook_receiver() as receiver, caplog.at_level(logging.WARNING):
        port = urlsplit(receiver.url).port
        await WebhookNotifier(f"http://localhost:{port}/hook", guard=deny_loopback).notify("x")

    assert receiver.bodies == []
    [failure] = failures(caplog)
    assert "deny list" in failure


async def test_a_webhook_name_is_posted_to_its_checked_address() -> None:
    with webhook_receiver() as receiver:
        port = urlsplit(receiver.url).port
        await WebhookNotifier(f"http://localhost:{port}/hook").notify("[gateway] hello")

    assert receiver.bodies == [{"text": "[gateway] hello"}]

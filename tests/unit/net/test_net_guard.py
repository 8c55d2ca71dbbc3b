"""The network guard's decisions on host names and addresses, and on what a name resolves to."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import pytest

from gateway.errors import DestinationBlocked
from gateway.net_guard import HostList, NetGuard
from gateway.settings import Settings


def guard(deny: str = "", allow: str = "", *, link_local: bool = False) -> NetGuard:
    return NetGuard.from_settings(
        Settings.load(
            environ={
                "GATEWAY_OUTBOUND_DENY_HOSTS": deny,
                "GATEWAY_OUTBOUND_ALLOW_HOSTS": allow,
                "GATEWAY_OUTBOUND_ALLOW_LINK_LOCAL": str(link_local).lower(),
            }
        )
    )


@pytest.mark.parametrize(
    "url",
    [
        "ws://169.254.169.254/latest/meta-data",
        "wss://[fe80::1]:8443/",
        "ws://[::ffff:169.254.169.254]/",
        "ws://metadata.google.internal/computeMetadata/v1/",
        "ws://METADATA.google.internal./",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
    ],
)
def test_link_local_and_metadata_destinations_are_refused_by_default(url: str) -> None:
    with pytest.raises(DestinationBlocked):
        guard().check_url(url)


@pytest.mark.parametrize(
    "url", ["ws://127.0.0.1:8080/feed", "wss://feed.example.com/ws", "ws://10.1.2.3/"]
)
def test_other_destinations_pass_by_default(url: str) -> None:
    guard().check_url(url)


def test_link_local_can_be_allowed_but_metadata_names_stay_refused() -> None:
    relaxed = guard(link_local=True)

    relaxed.check_url("ws://169.254.10.20/")
    with pytest.raises(DestinationBlocked, match="metadata"):
        relaxed.check_url("ws://metadata.google.internal/")


def test_the_deny_list_refuses_names_patterns_and_ranges() -> None:
    denying = guard(deny="internal.example.com, *.corp, 10.0.0.0/8")

    for url in ("ws://internal.example.com/", "ws://db.eu.corp/", "ws://10.9.8.7/"):
        with pytest.raises(DestinationBlocked, match="deny list"):
            denying.check_url(url)
    denying.check_url("ws://public.example.com/")


def test_the_allow_list_lets_only_its_hosts_through() -> None:
    allowing = guard(allow="feeds.example.com, *.partner.net, 192.0.2.0/24")

    for url in ("ws://feeds.example.com/", "ws://a.partner.net/", "ws://192.0.2.9/"):
        allowing.check_url(url)
    with pytest.raises(DestinationBlocked, match="allow list"):
        allowing.check_address("198.51.100.1", ipaddress.ip_address("198.51.100.1"))


def test_an_allow_list_of_names_only_refuses_other_names_when_written() -> None:
    with pytest.raises(DestinationBlocked, match="allow list"):
        guard(allow="feeds.example.com").check_url("ws://other.example.com/")


def test_a_bad_list_entry_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="neither a host name nor a range"):
        HostList.parse(["10.0.0.0/99"], "GATEWAY_OUTBOUND_DENY_HOSTS")


def fake_resolver(*addresses: str) -> Any:
    async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    return getaddrinfo


async def test_a_name_resolving_to_a_link_local_address_is_refused_at_connect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", fake_resolver("203.0.113.5", "169.254.169.254"))

    with pytest.raises(DestinationBlocked, match=r"rebind\.example \(169\.254\.169\.254\)"):
        await guard().resolve("rebind.example", 443)


async def test_the_connection_goes_to_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", fake_resolver("203.0.113.5"))

    assert await guard().resolve("feed.example", 443) == "203.0.113.5"


async def test_an_allowed_range_admits_a_name_by_its_resolved_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", fake_resolver("192.0.2.44"))
    allowing = guard(allow="192.0.2.0/24")

    assert await allowing.resolve("inside.example", 80) == "192.0.2.44"
    monkeypatch.setattr(loop, "getaddrinfo", fake_resolver("198.51.100.1"))
    with pytest.raises(DestinationBlocked, match="allow list"):
        await allowing.resolve("outside.example", 80)

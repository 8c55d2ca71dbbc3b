"""The network guard: where the gateway may connect on a user's behalf (WebSocket triggers, the
alert webhook), against server-side request forgery.

Refused by default: link-local addresses (169.254.0.0/16, where clouds serve instance metadata
and credentials at 169.254.169.254, and fe80::/10), the other metadata addresses and names of the
big clouds, and IPv4 addresses written inside IPv6 ones that would be refused themselves.
Operators add a deny list and, optionally, an allow list (nothing else is reachable) of entries:

    api.example.com       that host name          *.example.com   any name below example.com
    10.0.0.0/8            addresses in the range  192.0.2.7       that address

A URL is checked when it is written (its host as written: a name or an address), and again at
connect time on every address its name resolves to; the connection then goes to a checked
address, so a name that resolves elsewhere a moment later (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from gateway.errors import DestinationBlocked
from gateway.settings import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LINK_LOCAL: Final[tuple[Network, ...]] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
)
METADATA_ADDRESSES: Final[tuple[Network, ...]] = (
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS over IPv6
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud
)
METADATA_NAMES: Final = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
    }
)


@dataclass(frozen=True, slots=True)
class HostList:
    """Host names, ``*.suffix`` patterns and address ranges."""

    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str], setting: str) -> HostList:
        """Read entries of a setting; ConfigError-free: a bad entry raises ValueError naming it."""
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[Network] = []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            if entry.startswith("*."):
                suffixes.append(entry[1:])
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if "/" in entry or " " in entry:
                    raise ValueError(
                        f"{setting}: {raw!r} is neither a host name nor a range"
                    ) from None
                names.add(entry)
        return cls(frozenset(names), tuple(suffixes), tuple(networks))

    def __bool__(self) -> bool:
        return bool(self.names or self.suffixes or self.networks)

    def has_name(self, name: str) -> bool:
        """Whether the host name is listed, by itself or by a ``*.`` pattern."""
        return name in self.names or name.endswith(self.suffixes)

    def has_address(self, address: Address) -> bool:
        """Whether the address is in a listed range."""
        return any(address in network for network in self.networks)


@dataclass(frozen=True, slots=True)
class NetGuard:
    """Decides which hosts and addresses outbound connections may reach."""

    deny: HostList = field(default_factory=HostList)
    allow: HostList = field(default_factory=HostList)
    allow_link_local: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> NetGuard:
        """The guard the `outbound_*` settings describe."""
        return cls(
            deny=HostList.parse(settings.outbound_deny_hosts, "GATEWAY_OUTBOUND_DENY_HOSTS"),
            allow=HostList.parse(settings.outbound_allow_hosts, "GATEWAY_OUTBOUND_ALLOW_HOSTS"),
            allow_link_local=settings.outbound_allow_link_local,
        )

    def check_url(self, url: str) -> str:
        """The host of `url`, once its host as written is allowed; DestinationBlocked otherwise."""
        try:
            host = urlsplit(url).hostname
        except ValueError:
            raise DestinationBlocked(f"{url!r} is not a valid URL") from None
        if not host:
            raise DestinationBlocked("the URL names no host")
        self.check_host(host)
        return host

    def check_host(self, host: str) -> None:
        """Refuse a host name or address literal that is denied, or not allowed."""
        address = _literal_address(host)
        if address is not None:
            self.check_address(host, address)
            return
        name = host.lower().rstrip(".")
        if name in METADATA_NAMES:
            raise DestinationBlocked(f"{host} is a cloud metadata service")
        if self.deny.has_name(name):
            raise DestinationBlocked(f"{host} is on the deny list (GATEWAY_OUTBOUND_DENY_HOSTS)")
        if self.allow and not self.allow.has_name(name) and not self.allow.networks:
            raise DestinationBlocked(
                f"{host} is not on the allow list (GATEWAY_OUTBOUND_ALLOW_HOSTS)"
            )

    def check_address(self, host: str, address: Address) -> None:
        """Refuse an address `host` stands for (itself, or one its name resolved to)."""
        shown = host if host == str(address) else f"{host} ({address})"
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            self.check_address(host, address.ipv4_mapped)
        if not self.allow_link_local and any(address in network for network in LINK_LOCAL):
            raise DestinationBlocked(
                f"{shown} is a link-local address (cloud metadata lives there); "
                "GATEWAY_OUTBOUND_ALLOW_LINK_LOCAL allows it"
            )
        if any(address in network for network in METADATA_ADDRESSES):
            raise DestinationBlocked(f"{shown} is a cloud metadata service")
        if self.deny.has_address(address):
            raise DestinationBlocked(f"{shown} is on the deny list (GATEWAY_OUTBOUND_DENY_HOSTS)")
        name = host.lower().rstrip(".")
        if self.allow and not (self.allow.has_address(address) or self.allow.has_name(name)):
            raise DestinationBlocked(
                f"{shown} is not on the allow list (GATEWAY_OUTBOUND_ALLOW_HOSTS)"
            )

    async def resolve(self, host: str, port: int) -> str:
        """The address to connect to for `host`: every address it resolves to must be allowed.

        Raises DestinationBlocked, or OSError when the name does not resolve.
        """
        self.check_host(host)
        literal = _literal_address(host)
        if literal is not None:
            return str(literal)
        loop = asyncio.get_running_loop()
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [ipaddress.ip_address(entry[4][0]) for entry in found]
        for address in addresses:
            self.check_address(host, address)
        if not addresses:
            raise OSError(f"{host} resolves to no address")
        return str(addresses[0])


def _literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None

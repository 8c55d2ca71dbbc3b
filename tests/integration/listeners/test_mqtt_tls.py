"""MQTT over TLS, with a client certificate, against a mosquitto of our own."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.listeners.mqtt import MqttConnectionError, MqttListener

from .brokers import (
    BrokerProcess,
    events_until,
    free_port,
    lease_of,
    mqtt_publish,
    own_mosquitto,
    store_with_resources,
)

pytestmark = pytest.mark.integration
RESOURCE = "u/alice/mqtt"


def openssl(folder: Path, *args: str) -> None:
    """Run openssl in `folder`."""
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)


def issue(folder: Path, name: str, subject: str, extensions: str) -> None:
    """A key and a certificate for `name`, signed by the test CA."""
    openssl(folder, "genrsa", "-out", f"{name}.key", "2048")
    openssl(folder, "req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)
    (folder / f"{name}.ext").write_text(extensions)
    openssl(
        folder, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-out", f"{name}.pem", "-extfile", f"{name}.ext",
    )  # fmt: skip


@pytest.fixture
def certificates(tmp_path: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, in PEM."""
    folder = tmp_path / "pki"
    folder.mkdir()
    openssl(
        folder, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "1", "-subj", "/CN=gateway test CA",
    )  # fmt: skip
    issue(folder, "server", "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    issue(folder, "client", "/CN=gateway", "extendedKeyUsage=clientAuth\n")
    return folder


@pytest.fixture
def broker(tmp_path: Path, certificates: Path) -> Iterator[tuple[BrokerProcess, int]]:
    """A mosquitto with a plain listener (for publishing) and a mutual-TLS one, and its port."""
    tls_port = free_port()
    tls = (
        f"listener {tls_port} 127.0.0.1\n"
        f"cafile {certificates / 'ca.pem'}\n"
        f"certfile {certificates / 'server.pem'}\n"
        f"keyfile {certificates / 'server.key'}\n"
        "require_certificate true\n"
    )
    with own_mosquitto(tmp_path / "mosquitto", more_config=tls) as started:
        yield started, tls_port


def tls_resource(port: int, certificates: Path, **tls: Any) -> dict[str, Any]:
    """An `mqtt` resource for the TLS listener; `tls` overrides the PEM fields."""
    pem = {
        "ca_certificate": (certificates / "ca.pem").read_text(),
        "client_certificate": (certificates / "client.pem").read_text(),
        "client_key": (certificates / "client.key").read_text(),
    }
    return {"broker": "127.0.0.1", "port": port, "tls": {"enabled": True, **pem, **tls}}


def mqtt_lease() -> Any:
    """A trigger on topic `orders` at QoS 1."""
    return lease_of(
        "mqtt", mqtt_resource_path=RESOURCE, subscribe_topics=[{"topic": "orders", "qos": 1}]
    )


async def test_messages_arrive_over_mutual_tls(
    tmp_path: Path, broker: tuple[BrokerProcess, int], certificates: Path
) -> None:
    plain, tls_port = broker
    resources = {RESOURCE: ("mqtt", tls_resource(tls_port, certificates))}
    async with store_with_resources(tmp_path, resources) as store:
        listener = MqttListener(mqtt_lease(), store)
        try:
            await listener.connect()
            stream = listener.consume()
            await asyncio.to_thread(mqtt_publish, ("127.0.0.1", plain.port), "orders", b"sealed")
            batches = await events_until(stream, 1)
        finally:
            await listener.close()

    assert [event.payload for batch in batches for event in batch.events] == [b"sealed"]


@pytest.mark.parametrize(
    ("tls", "match"),
    [
        ({"ca_certificate": ""}, "certificate verify failed"),
        ({"client_certificate": None, "client_key": None}, "closed the connection before"),
    ],
    ids=["server not trusted", "no client certificate"],
)
async def test_a_tls_failure_is_a_connection_error(
    tmp_path: Path,
    broker: tuple[BrokerProcess, int],
    certificates: Path,
    tls: dict[str, Any],
    match: str,
) -> None:
    _, tls_port = broker
    resources = {RESOURCE: ("mqtt", tls_resource(tls_port, certificates, **tls))}
    async with store_with_resources(tmp_path, resources) as store:
        listener = MqttListener(mqtt_lease(), store)
        try:
            with pytest.raises(MqttConnectionError, match=match):
                await listener.connect()
        finally:
            await listener.close()

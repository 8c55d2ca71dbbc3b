"""What the NATS and MQTT listener tests share: the brokers named by the environment, private
brokers on free ports for the tests that stop one, a store holding resources, leases and waits.

Endpoints: `GATEWAY_TEST_NATS` (default ``nats://127.0.0.1:4222``) and `GATEWAY_TEST_MQTT`
(default ``127.0.0.1:1883``). A private broker is started from the `nats-server` or `mosquitto`
binary and stopped by its PID.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from gateway.listeners.base import Batch
from gateway.listeners.lease import Lease, TriggerRef
from gateway.store import Json, Store, open_store
from gateway.store.migrations import migrate
from gateway.workspaces import ensure_workspace

from ...conftest import service_missing
from ..support import OWNER, WS

NATS_URL = os.environ.get("GATEWAY_TEST_NATS", "nats://127.0.0.1:4222")
MQTT_ADDRESS = os.environ.get("GATEWAY_TEST_MQTT", "127.0.0.1:1883")
WAIT_S = 20.0
"""How long a test waits for something that should happen (a generous bound, not a measure)."""


def unique(prefix: str) -> str:
    """A name no other test, run or instance uses."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def nats_address() -> tuple[str, int]:
    """The host and port of the shared NATS server, checked to answer."""
    parts = urlsplit(NATS_URL if "://" in NATS_URL else f"nats://{NATS_URL}")
    return _answering("NATS", parts.hostname or "127.0.0.1", parts.port or 4222)


def mqtt_address() -> tuple[str, int]:
    """The host and port of the shared MQTT broker, checked to answer."""
    host, _, port = MQTT_ADDRESS.rpartition(":")
    return _answering("MQTT", host or "127.0.0.1", int(port or 1883))


def _answering(what: str, host: str, port: int) -> tuple[str, int]:
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        service_missing(f"{what} at {host}:{port}", str(exc))
    return host, port


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class BrokerProcess:
    """A broker of our own, on a loopback port, started and stopped by PID."""

    def __init__(self, name: str, command: list[str], port: int, log: Path) -> None:
        self.name = name
        self.port = port
        self._command = command
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the broker and wait until its port answers."""
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(self._command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start: {self._log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen on {self.port}: {self._log.read_text()}")

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL) and wait for it to exit."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _binary(name: str) -> str:
    for candidate in (
        shutil.which(name),
        str(Path(sys.executable).parent / name),
        f"/usr/sbin/{name}",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    service_missing(f"the {name} binary", "not installed (Debian package or pip package)")
    raise AssertionError("unreachable: service_missing skips or fails")


@contextmanager
def own_nats_server(folder: Path, *args: str) -> Iterator[BrokerProcess]:
    """A JetStream-enabled nats-server with a file store in `folder`, stopped at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [_binary("nats-server"), "-a", "127.0.0.1", "-p", str(port), "-js"]
    server = BrokerProcess(
        "nats-server", [*command, "-sd", str(folder), *args], port, folder / "nats.log"
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def own_mosquitto(
    folder: Path, *, anonymous: bool = True, more_config: str = ""
) -> Iterator[BrokerProcess]:
    """A mosquitto with persistence in `folder` (and `more_config` lines), stopped at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = folder / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        f"allow_anonymous {'true' if anonymous else 'false'}\n"
        # Started as root, mosquitto would switch to a user that cannot write `folder`.
        "user root\n"
        "persistence true\n"
        f"persistence_location {folder}/\n"
        f"{more_config}"
    )
    broker = BrokerProcess(
        "mosquitto", [_binary("mosquitto"), "-c", str(config)], port, folder / "mosquitto.log"
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@asynccontextmanager
async def store_with_resources(
    folder: Path, resources: Mapping[str, tuple[str, Any]]
) -> AsyncIterator[Store]:
    """A SQLite store with the test workspace and `path -> (resource type, value)` resources."""
    store = await open_store(f"sqlite:///{folder / 'gateway.db'}")
    try:
        await migrate(store)
        async with store.transaction() as tx:
            await ensure_workspace(tx, WS, OWNER)
            for path, (resource_type, value) in resources.items():
                await tx.execute(
                    "upsert_resource",
                    workspace_id=WS,
                    path=path,
                    value=Json(value),
                    description="",
                    resource_type=resource_type,
                    created_by=OWNER.username,
                )
        yield store
    finally:
        await store.close()


def lease_of(kind: str, **row: Any) -> Lease:
    """A lease on a new trigger of `kind` whose row has the given config columns."""
    trigger = TriggerRef(kind, WS, f"u/{OWNER.username}/{unique(kind + '_')}")
    return Lease(trigger, "test-instance", MappingProxyType({"path": trigger.path, **row}))


async def next_batch(stream: AsyncIterator[Batch]) -> Batch:
    """The next batch of a listener's `consume`; fails the test if none comes in time."""
    try:
        async with asyncio.timeout(WAIT_S):
            return await anext(stream)
    except TimeoutError:
        raise AssertionError(f"no batch within {WAIT_S:.0f}s") from None


async def events_until(stream: AsyncIterator[Batch], count: int) -> list[Batch]:
    """Batches until they hold `count` events in all (acked by the caller, or not)."""
    batches: list[Batch] = []
    while sum(len(batch.events) for batch in batches) < count:
        batches.append(await next_batch(stream))
    return batches


def mqtt_publish(
    address: tuple[str, int],
    topic: str,
    payload: bytes,
    *,
    qos: int = 1,
    retain: bool = False,
    properties: Mapping[str, Any] | None = None,
) -> None:
    """Publish one message as an MQTT 5 client and wait for the broker to take it (blocking)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(*address)
    client.loop_start()
    try:
        publish_properties = None
        if properties:
            publish_properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            for name, value in properties.items():
                setattr(publish_properties, name, value)
        sent = client.publish(topic, payload, qos=qos, retain=retain, properties=publish_properties)
        sent.wait_for_publish(WAIT_S)
        if not sent.is_published():
            raise AssertionError(f"the broker did not take the message on {topic}")
    finally:
        client.disconnect()
        client.loop_stop()


def forget_mqtt_session(address: tuple[str, int], client_id: str) -> None:
    """End the broker's session of `client_id` (a clean connection, expiring at once)."""
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.on_connect = lambda *_: connected.set()
    client.connect(*address, clean_start=True)
    client.loop_start()
    try:
        connected.wait(WAIT_S)
    finally:
        client.disconnect()
        client.loop_stop()

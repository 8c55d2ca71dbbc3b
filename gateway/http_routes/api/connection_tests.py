"""Connection tests of the listener kinds (reference 5.1): `POST /w/{workspace}/<kind>_triggers/
test` opens a real connection with what a trigger of that kind would use, then closes it.

Bodies, as the newest `windmill-api` client sends them (and the older clients):

    kafka, nats, mqtt, sqs, gcp   {"connection": <resource value>}
                                  {"connection": {"<field>": <resource path>, ...}}
                                  {"<field>": <resource path>, ...} (older clients)
    postgres                      {"database": <resource path>} or {"postgres_resource_path": ...}
    websocket                     {"url", "can_return_message", "url_runnable_args"?}

`<field>` is `kafka_resource_path`, `nats_resource_path`, `mqtt_resource_path`,
`aws_resource_path` or `gcp_resource_path`. Beside the resource a connection may say
`client_version` (MQTT), `queue_url` and `aws_auth_resource_type` (SQS), `topic_id` and
`project_id` (GCP). `$var:` / `$res:` strings in the body are resolved as the caller; a resource
named by path is read with `resource_value`, as the listener reads it.

What each test does, bounded by `TIMEOUT_S` in all:

    kafka      cluster metadata through an admin client (no consumer group is joined)
    nats       connect, then a flush (a PING answered by a PONG)
    mqtt       CONNECT with a clean session and a throwaway client id, then DISCONNECT
               (no subscription; the broker keeps nothing once the connection closes)
    sqs        GetQueueAttributes of `queue_url` when given, else ListQueues
    gcp        GetTopic of `topic_id` when given, else ListTopics (an `emulator_host` is used)
    postgres   connect and read `wal_level`, which must be `logical`
    websocket  the opening handshake, then a close; a `$script:` / `$flow:` URL is refused

Success is 200 with an empty body. A bad body or resource is 400 naming the field; a service that
cannot be reached, refuses, or does not answer in time is 400 naming its host (never a
credential). Needs the `<kind>_triggers:write` scope. The client libraries are imported when a
request comes, so that an installation without one (`gateway[kafka]`, ...) answers 409 for that
kind and still serves the rest of the API.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import ConfigError, Conflict, GatewayError, InvalidInput, NotFound
from gateway.http_routes.api.auth import Caller, Endpoint, in_workspace
from gateway.http_routes.api.context import secrets_of, store_of
from gateway.http_routes.api.interpolation import interpolate
from gateway.http_routes.api.permissions import visible
from gateway.http_routes.api.request_parsing import parse_model, read_json
from gateway.listeners import (
    gcp_config,
    kafka_config,
    mqtt_config,
    nats_config,
    postgres_config,
    sqs_config,
    websocket_config,
)
from gateway.net_guard import NetGuard
from gateway.resources import resource_value

logger = logging.getLogger(__name__)

TIMEOUT_S: Final = 30.0
CLIENT_NAME: Final = "gateway-connection-test"


# What a test opens ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Probe:
    """One connection to open and close: `target` names what it reaches in messages (hosts, never
    credentials), `field` is the input a failure is blamed on."""

    target: str
    field: str
    check: Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Connection:
    """What a test body names: a resource value (references resolved) and the options beside it.

    `field` is where the body names it (`connection`, `connection.kafka_resource_path`,
    `database`, ...); `resource_path` is None for a value given inline.
    """

    value: Any
    options: Mapping[str, Any]
    options_root: str
    field: str
    resource_path: str | None

    def option(self, name: str) -> str | None:
        """A text option beside the resource; None when absent or empty."""
        value = self.options.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise InvalidInput(self.option_field(name), "must be a string")
        return value

    def option_field(self, name: str) -> str:
        """The field of option `name` in the body."""
        return ".".join(filter(None, (self.options_root, name)))

    @contextmanager
    def resource_errors(self) -> Iterator[None]:
        """Blame a problem a resource validator finds on the resource's field in the body."""
        try:
            yield
        except InvalidInput as exc:
            # The validators name the field under "resource" (or "value"); the body's name for
            # it is "connection" for a value given inline.
            inner = exc.field
            for prefix in ("resource", "value", "body"):
                if inner == prefix or inner.startswith(f"{prefix}."):
                    inner = inner.removeprefix(prefix).removeprefix(".")
            if self.resource_path is None:
                raise InvalidInput(
                    ".".join(filter(None, ("connection", inner))), exc.reason
                ) from None
            raise InvalidInput(
                ".".join(filter(None, ("resource", inner))),
                f"{exc.reason} (resource {self.resource_path})",
            ) from None


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """A listener kind whose test connects with a resource."""

    path_fields: tuple[str, ...]
    """Where a body names the resource path, the newest name first."""
    options: frozenset[str]
    """The fields an inline connection may have beside the resource's own (beside a resource
    path, every other field is an option)."""
    plan: Callable[[Connection], Awaitable[Probe]]


# Kafka, NATS, MQTT ------------------------------------------------------------------------------


async def kafka_probe(connection: Connection) -> Probe:
    """Cluster metadata through an admin client, which joins no consumer group."""
    with connection.resource_errors():
        resource = kafka_config.parse_resource(connection.value)
        kwargs = await asyncio.to_thread(kafka_config.connection_kwargs, resource)
    target = f"Kafka brokers {', '.join(resource.brokers)}"

    async def check() -> None:
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.errors import KafkaError

        admin = AIOKafkaAdminClient(client_id=CLIENT_NAME, **kwargs)
        try:
            await admin.start()
            await admin.describe_cluster()
        except (OSError, KafkaError) as exc:
            raise _unreachable(target, connection.field, exc) from None
        finally:
            await admin.close()

    return Probe(target, connection.field, check)


async def nats_probe(connection: Connection) -> Probe:
    """Connect, then flush: the server answers a PING only once it accepted the connection."""
    with connection.resource_errors():
        resource = nats_config.parse_resource(connection.value)
    urls = resource.urls()
    target = f"NATS servers {', '.join(_without_credentials(url) for url in urls)}"

    async def check() -> None:
        import nats
        import nats.errors
        from nats.aio.client import RawCredentials

        options: dict[str, Any] = dict(resource.credentials())
        if "creds" in options:
            options["user_credentials"] = RawCredentials(options.pop("creds"))
        if resource.wants_tls():
            options["tls"] = await asyncio.to_thread(ssl.create_default_context)
        errors: list[Exception] = []

        async def remember(error: Exception) -> None:
            errors.append(error)

        try:
            client = await nats.connect(
                urls,
                name=CLIENT_NAME,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                connect_timeout=int(TIMEOUT_S),
                error_cb=remember,
                **options,
            )
        except (OSError, nats.errors.Error) as exc:
            # "no servers available" says less than the last server's own refusal.
            cause = errors[-1] if errors and isinstance(exc, nats.errors.NoServersError) else exc
            raise _unreachable(target, connection.field, cause) from None
        try:
            await client.flush(timeout=int(TIMEOUT_S))
        except (OSError, nats.errors.Error) as exc:
            raise _unreachable(target, connection.field, errors[-1] if errors else exc) from None
        finally:
            await client.close()

    return Probe(target, connection.field, check)


async def mqtt_probe(connection: Connection) -> Probe:
    """CONNECT with a clean session and a client id of its own, then DISCONNECT."""
    with connection.resource_errors():
        resource = mqtt_config.parse_resource(connection.value)
    version = connection.option("client_version") or "v5"
    if version not in ("v3", "v5"):
        raise InvalidInput(connection.option_field("client_version"), "must be v3 or v5")
    target = f"the MQTT broker at {resource.broker}:{resource.port}"

    async def check() -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
        from paho.mqtt.properties import Properties
        from paho.mqtt.reasoncodes import ReasonCode

        from gateway.listeners.mqtt import KEEPALIVE_S, _tls_context
        from gateway.listeners.mqtt_loop import PahoOnLoop

        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[ReasonCode] = loop.create_future()

        def on_connect(
            client: mqtt.Client,
            userdata: Any,
            flags: mqtt.ConnectFlags,
            reason: ReasonCode,
            properties: Properties | None,
        ) -> None:
            if not accepted.done():
                accepted.set_result(reason)

        def on_disconnect(
            client: mqtt.Client,
            userdata: Any,
            flags: mqtt.DisconnectFlags,
            reason: ReasonCode,
            properties: Properties | None,
        ) -> None:
            lost(f"the broker closed the connection ({reason})")

        def lost(detail: str) -> None:
            if not accepted.done():
                accepted.set_exception(ConnectionError(detail))

        v5 = version == "v5"
        # Clean and never named again: a v5 session without an expiry interval, like a v3 clean
        # session, ends with the connection, so the broker keeps nothing of the test.
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"gw-test-{uuid.uuid4().hex[:12]}",
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else True,
        )
        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        credentials = resource.credentials
        if credentials is not None and credentials.username:
            client.username_pw_set(credentials.username, credentials.password)
        if resource.tls is not None and resource.tls.enabled:
            with connection.resource_errors():
                try:
                    context = await asyncio.to_thread(_tls_context, resource.tls)
                except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                    raise InvalidInput("tls", f"cannot be used: {_describe(exc)}") from None
            client.tls_set_context(context)
        io = PahoOnLoop(client, lost)
        try:
            await io.connect(
                resource.broker, resource.port, KEEPALIVE_S, **({"clean_start": True} if v5 else {})
            )
            reason = await accepted
        except (OSError, ValueError) as exc:  # ConnectionError, from `lost`, is an OSError
            raise _unreachable(target, connection.field, exc) from None
        finally:
            await io.close()
        if reason.is_failure:
            raise InvalidInput(connection.field, f"{target} refused the connection: {reason}")

    return Probe(target, connection.field, check)


# SQS, GCP Pub/Sub -------------------------------------------------------------------------------


async def sqs_probe(connection: Connection) -> Probe:
    """GetQueueAttributes of the queue when the connection names one, else ListQueues."""
    auth = connection.option("aws_auth_resource_type") or "credentials"
    if auth not in ("credentials", "oidc"):
        raise InvalidInput(
            connection.option_field("aws_auth_resource_type"), "must be credentials or oidc"
        )
    with connection.resource_errors():
        resource = sqs_config.parse_resource(connection.value, auth)
    queue_url = connection.option("queue_url")
    options = sqs_config.SqsOptions.from_environ(os.environ)
    endpoint = resource.endpoint_url or options.endpoint_url
    region = resource.region or sqs_config.DEFAULT_REGION
    config: sqs_config.SqsTriggerConfig | None = None
    if queue_url is not None:
        try:
            # A trigger's own rules check the queue URL; the resource path plays no part here.
            config = sqs_config.validate_trigger(
                {"queue_url": queue_url, "aws_resource_path": "-", "aws_auth_resource_type": auth}
            )
        except InvalidInput as exc:
            raise InvalidInput(connection.option_field(exc.field), exc.reason) from None
        target = f"the SQS queue {_without_credentials(queue_url)}"
    else:
        target = f"SQS at {_without_credentials(endpoint) if endpoint else region}"

    async def check() -> None:
        from gateway.listeners.sqs import (
            AioAwsClients,
            SqsConnection,
            SqsError,
            _sqs_call,
            queue_depth,
            resolve_credentials,
        )

        aws = AioAwsClients(options)
        try:
            if config is not None:
                await queue_depth(config, resource, options=options, clients=aws)
                return
            credentials = await resolve_credentials(resource, region, options, aws)
            async with aws.sqs(SqsConnection(region, endpoint, credentials)) as client:
                # The SQS module maps the AWS client's errors, once, to SqsError.
                listing = client.list_queues(MaxResults=1)
                await _sqs_call(endpoint or region, "ListQueues", listing)
        except SqsError as exc:
            raise InvalidInput(connection.field, str(exc)) from None
        except ConfigError as exc:
            raise Conflict(str(exc)) from None

    return Probe(target, connection.field, check)


async def gcp_probe(connection: Connection) -> Probe:
    """GetTopic of the topic when the connection names one, else ListTopics of the project."""
    with connection.resource_errors():
        resource = gcp_config.parse_resource(connection.value)
    project = connection.option("project_id") or resource.project_id
    topic = connection.option("topic_id")
    name = None
    if topic is not None:
        name = topic if topic.startswith("projects/") else f"projects/{project}/topics/{topic}"
    host = resource.emulator_host or "pubsub.googleapis.com"
    target = f"Pub/Sub at {host} (project {project})"

    async def check() -> None:
        from google.api_core import exceptions as google_errors
        from google.auth import exceptions as auth_errors

        from gateway.listeners.gcp import PubSubClients

        with connection.resource_errors():
            try:
                clients = await PubSubClients.open(resource)
            except ValueError as exc:
                raise InvalidInput("private_key", f"cannot be used: {_describe(exc)}") from None
        try:
            # No retries: a test reports the first refusal rather than waiting out a backoff.
            if name is None:
                await clients.publisher.list_topics(
                    project=f"projects/{project}", retry=None, timeout=TIMEOUT_S
                )
            else:
                await clients.publisher.get_topic(topic=name, retry=None, timeout=TIMEOUT_S)
        except google_errors.NotFound:
            raise InvalidInput(
                connection.option_field("topic_id"), f"Topic {name} does not exist at {host}"
            ) from None
        except (google_errors.GoogleAPIError, auth_errors.GoogleAuthError) as exc:
            raise _unreachable(target, connection.field, exc) from None
        finally:
            await clients.close()

    return Probe(target, connection.field, check)


# PostgreSQL -------------------------------------------------------------------------------------


async def postgres_probe(connection: Connection) -> Probe:
    """Connect and read `wal_level`: streaming changes needs `logical`."""
    with connection.resource_errors():
        resource = postgres_config.parse_resource(connection.value)
    target = f"PostgreSQL at {resource.describe()}"

    async def check() -> None:
        try:
            async with postgres_config.admin_connection(resource, connection.field) as conn:
                cursor = await conn.execute("SELECT current_setting('wal_level') AS level")
                found = await cursor.fetchone()
        except InvalidInput as exc:
            raise InvalidInput(connection.field, exc.reason) from None
        level = found["level"] if found else "unknown"
        if level != "logical":
            raise InvalidInput(
                connection.field,
                f"{target} has wal_level = {level}, and PostgreSQL triggers need wal_level = "
                "logical: set it (ALTER SYSTEM SET wal_level = logical) and restart the server",
            )

    return Probe(target, connection.field, check)


# WebSocket --------------------------------------------------------------------------------------


class WebsocketTest(BaseModel):
    """The body of the WebSocket test; only the URL matters to a handshake."""

    model_config = ConfigDict(extra="ignore")

    url: str
    can_return_message: bool = False
    url_runnable_args: dict[str, Any] | None = None


async def websocket_probe(url: str, guard: NetGuard | None = None) -> Probe:
    """The opening handshake, then a close (to an address `guard` allows)."""
    config = websocket_config.validate_trigger({"url": url})
    if config.url_runnable is not None:
        raise InvalidInput("url", "computed URLs cannot be tested without running the script")
    from gateway.listeners.websocket import (
        WebsocketConnectionError,
        WebsocketOptions,
        _open,
        redact,
    )

    async def check() -> None:
        try:
            opened = await _open(url, WebsocketOptions(guard=guard or NetGuard()))
        except WebsocketConnectionError as exc:
            raise InvalidInput("url", str(exc)) from None
        await opened.close()

    return Probe(redact(url), "url", check)


# The endpoints ----------------------------------------------------------------------------------


KINDS: Final[Mapping[str, ResourceKind]] = {
    "kafka": ResourceKind(("kafka_resource_path",), frozenset(), kafka_probe),
    "nats": ResourceKind(("nats_resource_path",), frozenset(), nats_probe),
    "mqtt": ResourceKind(("mqtt_resource_path",), frozenset({"client_version"}), mqtt_probe),
    "sqs": ResourceKind(
        ("aws_resource_path",), frozenset({"queue_url", "aws_auth_resource_type"}), sqs_probe
    ),
    # `project_id` beside a resource path overrides the key's; inline, it is the key's own.
    "gcp": ResourceKind(("gcp_resource_path",), frozenset({"topic_id"}), gcp_probe),
    "postgres": ResourceKind(("database", "postgres_resource_path"), frozenset(), postgres_probe),
}


async def read_connection(request: Request, caller: Caller, kind: ResourceKind) -> Connection:
    """The connection the body names: inline (`$var:`/`$res:` resolved as the caller), or the
    value of a resource the caller can see."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object")
    # The older clients send the resource path at the top level.
    root = "connection" if "connection" in body else ""
    given = body["connection"] if root else body
    if isinstance(given, str):
        given = {kind.path_fields[0]: given}
    if not isinstance(given, dict):
        raise InvalidInput(
            root or "body",
            f"must be the resource value, or {{{kind.path_fields[0]!r}: <resource path>}}",
        )
    async with store_of(request).transaction() as tx:
        try:
            given = await interpolate(tx, secrets_of(request), caller, given)
        except NotFound as exc:
            raise InvalidInput(root or "body", str(exc)) from None
    path_field = next((name for name in kind.path_fields if name in given), None)
    if path_field is None:
        if not root:
            raise InvalidInput(
                "connection",
                f"required: the resource value, or {{{kind.path_fields[0]!r}: <resource path>}}",
            )
        value = {key: item for key, item in given.items() if key not in kind.options}
        options = {key: item for key, item in given.items() if key in kind.options}
        return Connection(value, options, root, root, None)
    field = ".".join(filter(None, (root, path_field)))
    path = given[path_field]
    if not isinstance(path, str) or not path.strip():
        raise InvalidInput(field, "must be a resource path")
    if not visible(caller, path):
        raise InvalidInput(field, f"no resource at path {path!r} in this workspace")
    try:
        value = await resource_value(store_of(request), caller.workspace_id, path)
    except NotFound as exc:
        raise InvalidInput(field, str(exc)) from None
    options = {key: item for key, item in given.items() if key != path_field}
    return Connection(value, options, root, field, path)


async def run_probe(kind: str, probe: Probe) -> None:
    """Open and close the probe's connection within `TIMEOUT_S`; log the outcome."""
    bound = asyncio.timeout(TIMEOUT_S)
    try:
        async with bound:
            await probe.check()
    except TimeoutError:
        if not bound.expired():
            raise
        failure = InvalidInput(
            probe.field,
            f"Timeout connecting to service after {TIMEOUT_S:g} seconds: {probe.target}",
        )
        _log(kind, probe, failure)
        raise failure from None
    except GatewayError as exc:
        _log(kind, probe, exc)
        raise
    _log(kind, probe, None)


def _test_endpoint(name: str, kind: ResourceKind) -> Endpoint:
    async def endpoint(request: Request, caller: Caller) -> Response:
        caller.require_scope(f"{name}_triggers", "write")
        connection = await read_connection(request, caller, kind)
        with _client_library(name):
            await run_probe(name, await kind.plan(connection))
        return Response(status_code=200)

    endpoint.__name__ = f"test_{name}_connection"
    endpoint.__doc__ = f"Open and close a connection as a {name} trigger would; 200 when it works."
    return in_workspace(endpoint)


async def test_websocket_connection(request: Request, caller: Caller) -> Response:
    """Open and close a connection to the URL; 200 when the handshake succeeds."""
    caller.require_scope("websocket_triggers", "write")
    body = parse_model(WebsocketTest, await read_json(request))
    with _client_library("websocket"):
        guard = NetGuard.from_settings(request.app.state.gateway.settings)
        await run_probe("websocket", await websocket_probe(body.url, guard))
    return Response(status_code=200)


@contextmanager
def _client_library(kind: str) -> Iterator[None]:
    """A kind whose client library is not installed answers 409, saying which extra has it."""
    try:
        yield
    except ModuleNotFoundError as exc:
        raise Conflict(
            f"this gateway instance has no {kind} client ({exc.name} is not installed): "
            f"install gateway[{kind}] to test {kind} connections"
        ) from None


def _unreachable(target: str, field: str, exc: BaseException) -> InvalidInput:
    return InvalidInput(field, f"cannot connect to {target}: {_describe(exc)}")


def _without_credentials(url: str) -> str:
    """The URL without user, password, query or fragment, fit for messages."""
    parts = urlsplit(url if "://" in url else f"//{url}")
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else f"{host}{parts.path}"


def _describe(exc: BaseException) -> str:
    name, text = type(exc).__name__, str(exc)
    if not text or text.startswith(name):  # aiokafka's messages start with the class name
        return text or name
    return f"{name}: {text}"


def _log(kind: str, probe: Probe, failure: GatewayError | None) -> None:
    outcome = "ok" if failure is None else f"failed: {failure}"
    logger.info(
        "%s connection test of %s %s",
        kind,
        probe.target,
        outcome,
        extra={"action": "connection_test", "kind": kind},
    )


routes = [
    *(
        Route(
            f"/w/{{workspace}}/{name}_triggers/test", _test_endpoint(name, kind), methods=["POST"]
        )
        for name, kind in KINDS.items()
    ),
    Route(
        "/w/{workspace}/websocket_triggers/test",
        in_workspace(test_websocket_connection),
        methods=["POST"],
    ),
]

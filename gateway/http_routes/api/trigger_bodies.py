"""The bodies of trigger writes: the fields every kind shares, one model per kind for its own
columns (the names of the `windmill-api` client, which are the table's columns), and the checks
that need no database.

Shared fields: `path`, `script_path`, `is_flow`, `mode` (or the legacy `enabled`),
`error_handler_path`, `error_handler_args`, `retry`, `permissioned_as` +
`preserve_permissioned_as`, `labels`. Unknown fields are ignored, as Windmill does.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.errors import InvalidInput
from gateway.http_routes.routes.cors import normalized_origins
from gateway.http_routes.routes.router import route_path_key
from gateway.jobs.retry import RetryPolicy, RetryPolicyError
from gateway.store.trigger_tables import TRIGGER_TABLES
from gateway.triggers.filters import FilterError, validate_filters

Mode = Literal["enabled", "disabled", "suspended"]
ROUTE_SEGMENT: Final = re.compile(r"^:?[-\w]+$")
ROUTE_TAIL: Final = re.compile(r"^\*[-\w]+$")
LOCAL_PART: Final = re.compile(r"^[\w.+-]{1,255}$")


def resolve_mode(mode: Mode | None, enabled: bool | None) -> Mode:
    """`mode` if given, else the legacy `enabled` flag, else enabled."""
    if mode is not None:
        return mode
    return "disabled" if enabled is False else "enabled"


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TriggerBody(_Part):
    """What every kind's create and update body carries."""

    kind: ClassVar[str]

    path: str
    script_path: str
    is_flow: bool = False
    mode: Mode | None = None
    enabled: bool | None = None
    error_handler_path: str | None = None
    error_handler_args: dict[str, Any] | None = None
    retry: dict[str, Any] | None = None
    permissioned_as: str | None = None
    preserve_permissioned_as: bool = False
    labels: list[str] | None = None

    def check(self) -> None:
        """Refuse what the model cannot express: InvalidInput naming the field."""
        self.retry_json()
        self.handler_path()

    def retry_json(self) -> dict[str, Any] | None:
        """The retry policy, validated and with its defaults written out; None when absent."""
        try:
            policy = RetryPolicy.parse(self.retry)
        except RetryPolicyError as exc:
            field, _, reason = exc.problems[0].partition(": ")
            raise InvalidInput(field, reason) from None
        return policy.to_json() if policy is not None else None

    def handler_path(self) -> str | None:
        """The error handler script, without a `script/` prefix; flows cannot handle errors."""
        if not self.error_handler_path:
            return None
        if self.error_handler_path.startswith("flow/"):
            raise InvalidInput("error_handler_path", "must name a script, not a flow")
        return self.error_handler_path.removeprefix("script/")

    def config(self, workspace_id: str) -> dict[str, Any]:
        """The kind's own columns this body sets (a column it leaves null takes its default)."""
        columns = set(TRIGGER_TABLES[self.kind].config_columns) & set(type(self).model_fields)
        return self.model_dump(include=columns, exclude_none=True)

    def resource_paths(self) -> dict[str, str]:
        """The resources the trigger uses, by field name."""
        return {
            name: value
            for name, value in self.model_dump().items()
            if name.endswith("_resource_path") and value
        }


def _check_filters(filters: list[Any]) -> None:
    try:
        validate_filters(filters)
    except FilterError as exc:
        raise InvalidInput(exc.location, exc.reason) from None


class StaticAssetConfig(_Part):
    """Where an HTTP route's static files live: a `directory` under the instance's static root
    (with the `filename` of a single asset in it), or Windmill's object storage key `s3`, which
    is accepted but not served."""

    s3: str | None = None
    storage: str | None = None
    directory: str | None = None
    filename: str | None = None

    def check(self, website: bool) -> None:
        """Refuse a config that names no place, or one that could leave the static root."""
        if (self.s3 is None) == (self.directory is None):
            raise InvalidInput("static_asset_config", "give either directory or s3")
        if self.directory is not None:
            directory = PurePosixPath(self.directory)
            if directory.is_absolute() or ".." in directory.parts or "\\" in self.directory:
                raise InvalidInput(
                    "static_asset_config.directory",
                    "must be a relative path under the static root, without ..",
                )
            if not website and not self.filename:
                raise InvalidInput(
                    "static_asset_config.filename", "required: the file of the directory to serve"
                )
        if self.filename is not None and (
            not self.filename or "/" in self.filename or self.filename in (".", "..")
        ):
            raise InvalidInput("static_asset_config.filename", "must be a file name, without /")


class HttpBody(TriggerBody):
    """An HTTP route."""

    kind = "http"

    route_path: str = Field(min_length=1, max_length=255)
    http_method: Literal["get", "post", "put", "delete", "patch"]
    authentication_method: Literal[
        "none", "windmill", "api_key", "basic_http", "custom_script", "signature"
    ] = "none"
    authentication_resource_path: str | None = None
    static_asset_config: StaticAssetConfig | None = None
    is_static_website: bool = False
    workspaced_route: bool = False
    wrap_body: bool = False
    raw_string: bool = False
    summary: str | None = Field(default=None, max_length=512)
    description: str | None = None
    request_type: Literal["sync", "async", "sync_sse"] | None = None
    is_async: bool | None = None
    allowed_origins: list[str] | None = None

    def check(self) -> None:
        super().check()
        segments = self.route_path.split("/")
        if not all(ROUTE_SEGMENT.match(s) for s in segments[:-1]) or not (
            ROUTE_SEGMENT.match(segments[-1]) or ROUTE_TAIL.match(segments[-1])
        ):
            raise InvalidInput(
                "route_path",
                f"{self.route_path!r} is not a route: segments of letters, digits, _ and -, "
                "`:name` for a parameter, `*name` as the last segment, no leading /",
            )
        needs_resource = ("api_key", "basic_http", "signature")
        if self.authentication_method in needs_resource and not self.authentication_resource_path:
            raise InvalidInput(
                "authentication_resource_path",
                f"required with authentication_method {self.authentication_method}",
            )
        if self.static_asset_config is not None:
            self.static_asset_config.check(self.is_static_website)
        elif self.is_static_website:
            raise InvalidInput("static_asset_config", "required by a static website")
        self.origins()

    def origins(self) -> list[str] | None:
        """The CORS origins as stored: normalized; None (every origin) when none are given."""
        try:
            return normalized_origins(self.allowed_origins or ())
        except ValueError as exc:
            raise InvalidInput("allowed_origins", str(exc)) from None

    def route_key(self, workspace_id: str) -> str:
        """The route with parameter names erased, which two routes may not share per method."""
        return route_path_key(self.route_path, workspace_id if self.workspaced_route else None)

    def config(self, workspace_id: str) -> dict[str, Any]:
        values = super().config(workspace_id)
        values["request_type"] = self.request_type or ("async" if self.is_async else "sync")
        values["route_path_key"] = self.route_key(workspace_id)
        values["allowed_origins"] = self.origins()
        return values


class Heartbeat(_Part):
    """A message a WebSocket trigger sends periodically."""

    interval_secs: int = Field(gt=0)
    message: str
    state_field: str | None = None


class WebsocketBody(TriggerBody):
    """A WebSocket client."""

    kind = "websocket"

    url: str = Field(min_length=1, max_length=1000)
    filters: list[Any] = []
    filter_logic: Literal["and", "or"] = "and"
    initial_messages: list[dict[str, Any]] | None = None
    url_runnable_args: dict[str, Any] | None = None
    can_return_message: bool = False
    can_return_error_result: bool = False
    heartbeat: Heartbeat | None = None

    def check(self) -> None:
        super().check()
        if not self.url.startswith(("ws://", "wss://", "$script:", "$flow:")):
            raise InvalidInput("url", "must start with ws://, wss:// or $script:")
        _check_filters(self.filters)


class KafkaBody(TriggerBody):
    """A Kafka consumer group."""

    kind = "kafka"

    kafka_resource_path: str
    group_id: str = Field(min_length=1, max_length=255)
    topics: list[str] = Field(min_length=1)
    filters: list[Any] = []
    filter_logic: Literal["and", "or"] = "and"
    auto_offset_reset: Literal["latest", "earliest"] = "latest"
    auto_commit: bool = True

    def check(self) -> None:
        super().check()
        if not all(topic.strip() for topic in self.topics):
            raise InvalidInput("topics", "topic names cannot be empty")
        _check_filters(self.filters)


class NatsBody(TriggerBody):
    """A NATS (or JetStream) subscription."""

    kind = "nats"

    nats_resource_path: str
    subjects: list[str] = Field(min_length=1)
    use_jetstream: bool = False
    stream_name: str | None = None
    consumer_name: str | None = None

    def check(self) -> None:
        super().check()
        if self.use_jetstream:
            for field in ("stream_name", "consumer_name"):
                if not getattr(self, field):
                    raise InvalidInput(field, "required when use_jetstream is true")
        elif len(self.subjects) != 1:
            raise InvalidInput("subjects", "core NATS (use_jetstream false) takes one subject")


class SqsBody(TriggerBody):
    """An SQS queue."""

    kind = "sqs"

    queue_url: str = Field(min_length=1, max_length=255)
    aws_resource_path: str
    aws_auth_resource_type: Literal["credentials", "oidc"] = "credentials"
    message_attributes: list[str] | None = None


class DeliveryConfig(_Part):
    """How Google pushes messages to a push subscription."""

    authenticate: bool
    audience: str | None = None


class GcpBody(TriggerBody):
    """A Google Cloud Pub/Sub subscription."""

    kind = "gcp"

    gcp_resource_path: str
    topic_id: str = Field(min_length=3, max_length=255)
    subscription_id: str = Field(min_length=3, max_length=255)
    delivery_type: Literal["push", "pull"] = "pull"
    delivery_config: DeliveryConfig | None = None
    subscription_mode: Literal["existing", "create_update"] = "create_update"
    auto_acknowledge_msg: bool = True
    ack_deadline: int | None = Field(default=None, ge=10, le=600)

    def check(self) -> None:
        super().check()
        if self.delivery_type == "push" and self.delivery_config is None:
            raise InvalidInput("delivery_config", "required when delivery_type is push")


class MqttTopic(_Part):
    """One MQTT subscription."""

    topic: str = Field(min_length=1)
    qos: Literal["qos0", "qos1", "qos2"] = "qos0"


class MqttBody(TriggerBody):
    """An MQTT client."""

    kind = "mqtt"

    mqtt_resource_path: str
    subscribe_topics: list[MqttTopic] = Field(min_length=1)
    client_version: Literal["v3", "v5"] | None = None
    v3_config: dict[str, Any] | None = None
    v5_config: dict[str, Any] | None = None
    client_id: str | None = Field(default=None, max_length=65535)


class PostgresBody(TriggerBody):
    """A logical replication slot and publication of a PostgreSQL database."""

    kind = "postgres"

    postgres_resource_path: str
    replication_slot_name: str = Field(min_length=1, max_length=255)
    publication_name: str = Field(min_length=1, max_length=255)
    publication: dict[str, Any] | None = None

    def check(self) -> None:
        super().check()
        if self.publication is not None:
            raise InvalidInput(
                "publication",
                "creating publications is not supported: create it in the database and give "
                "its publication_name",
            )


class EmailBody(TriggerBody):
    """An inbound email address."""

    kind = "email"

    local_part: str
    workspaced_local_part: bool = False

    def check(self) -> None:
        super().check()
        if not LOCAL_PART.match(self.local_part):
            raise InvalidInput("local_part", "letters, digits and . _ + - only")


BODIES: Final[dict[str, type[TriggerBody]]] = {
    body.kind: body
    for body in (
        HttpBody, WebsocketBody, KafkaBody, NatsBody, SqsBody, GcpBody, MqttBody,
        PostgresBody, EmailBody,
    )
}  # fmt: skip
"""The body model of each kind."""


class ModeChange(_Part):
    """The body of `setmode` (`{"mode"}`, plus Windmill's `force`) or legacy `setenabled`."""

    mode: Mode | None = None
    enabled: bool | None = None
    force: bool | None = None

    def resolved(self) -> Mode:
        """The mode asked for."""
        if self.mode is None and self.enabled is None:
            raise InvalidInput("mode", "give mode: enabled, disabled or suspended")
        return resolve_mode(self.mode, self.enabled)

"""What a Kafka trigger needs before it can connect: its config, its `kafka` resource, the client
arguments both map to, and the consumer's timings.

- `validate_trigger(row)`: the `kafka_trigger` columns, checked when a trigger is written;
- `parse_resource(value)`: a `kafka` resource value, Windmill's shape::

      {"brokers": ["host1:9092", ...],
       "security": {"label": "PLAINTEXT"}                          (the default)
                 | {"label": "SSL", "ca"?, "certificate"?, "key"?, "key_password"?}
                 | {"label": "SASL_PLAINTEXT", "mechanism", "username", "password"}
                 | {"label": "SASL_SSL", "mechanism", "username", "password", + the SSL fields}}

  `mechanism` is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; the SSL fields are PEM strings, and an
  empty string counts as absent. Kerberos (GSSAPI) is not supported;
- `connection_kwargs(resource)`: the aiokafka arguments, with an SSL context built from the PEM
  strings (it reads files, so callers on the event loop run it in a thread).

Both validators raise `InvalidInput` naming the field (`topics[1]`, `security.mechanism`, ...); the
model validators raise it themselves where pydantic's location would be less precise.
"""

from __future__ import annotations

import re
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from gateway.errors import InvalidInput
from gateway.triggers.filters import FilterError, validate_filters

# Kafka's own rule for topic names: what a broker would refuse anyway is refused at write time.
TOPIC_NAME: Final = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
SaslMechanism: TypeAlias = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class KafkaTriggerConfig(_Model):
    """The Kafka columns of a `kafka_trigger` row."""

    kafka_resource_path: str = Field(min_length=1)
    topics: tuple[str, ...] = Field(min_length=1)
    group_id: str = Field(min_length=1, max_length=255)
    filters: list[Any] = []
    filter_logic: Literal["and", "or"] = "and"
    auto_offset_reset: Literal["earliest", "latest"] = "latest"
    reset_offset: bool = False
    auto_commit: bool = True

    @field_validator("kafka_resource_path", "group_id")
    @classmethod
    def _not_blank(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            raise InvalidInput(str(info.field_name), "cannot be blank")
        return value

    @field_validator("topics")
    @classmethod
    def _topic_names(cls, topics: tuple[str, ...]) -> tuple[str, ...]:
        for index, topic in enumerate(topics):
            if not TOPIC_NAME.match(topic):
                raise InvalidInput(
                    f"topics[{index}]",
                    f"{topic!r} is not a Kafka topic name (1 to 249 letters, digits, . _ -)",
                )
        # Listed twice is still one subscription.
        return tuple(dict.fromkeys(topics))

    @field_validator("filters")
    @classmethod
    def _valid_filters(cls, filters: list[Any]) -> list[Any]:
        try:
            validate_filters(filters)
        except FilterError as exc:
            raise InvalidInput(exc.location, exc.reason) from None
        return filters


class Plaintext(_Model):
    """No encryption, no authentication."""

    label: Literal["PLAINTEXT"] = "PLAINTEXT"


class _Tls(_Model):
    """PEM strings for TLS: the CA to trust (the system's when absent) and a client identity."""

    ca: str | None = None
    certificate: str | None = None
    key: str | None = None
    key_password: str | None = None

    @field_validator("ca", "certificate", "key", "key_password", mode="before")
    @classmethod
    def _empty_is_absent(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _key_needs_certificate(self) -> Self:
        if self.key is not None and self.certificate is None:
            raise InvalidInput("security.certificate", "a client key needs its certificate")
        return self


class Ssl(_Tls):
    """TLS, optionally with a client certificate (mutual TLS)."""

    label: Literal["SSL"]


class _Sasl(_Model):
    mechanism: SaslMechanism
    username: str = Field(min_length=1)
    password: str


class SaslPlaintext(_Sasl):
    """SASL authentication over an unencrypted connection."""

    label: Literal["SASL_PLAINTEXT"]


class SaslSsl(_Sasl, _Tls):
    """SASL authentication over TLS."""

    label: Literal["SASL_SSL"]


Security: TypeAlias = Annotated[
    Plaintext | Ssl | SaslPlaintext | SaslSsl, Field(discriminator="label")
]
_LABELS: Final = frozenset({"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"})


class KafkaResource(_Model):
    """A `kafka` resource: where the brokers are and how to reach them."""

    brokers: tuple[str, ...] = Field(min_length=1)
    security: Security = Plaintext()

    @field_validator("brokers")
    @classmethod
    def _broker_addresses(cls, brokers: tuple[str, ...]) -> tuple[str, ...]:
        for index, broker in enumerate(brokers):
            if not broker.strip():
                raise InvalidInput(f"brokers[{index}]", "cannot be blank")
        return tuple(broker.strip() for broker in brokers)


@dataclass(frozen=True, slots=True)
class ConsumerOptions:
    """How the gateway's Kafka consumers behave; Kafka's usual timings by default.

    `max_batch` bounds the records of one batch (one job transaction); `commit_timeout_s` bounds
    an offset commit, which aiokafka would otherwise retry for as long as the coordinator is away.
    """

    max_batch: int = 1000
    poll_timeout_s: float = 1.0
    commit_timeout_s: float = 10.0
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    rebalance_timeout_ms: int = 60_000
    max_poll_interval_ms: int = 300_000

    def consumer_kwargs(self) -> dict[str, Any]:
        """The aiokafka consumer arguments for these timings."""
        return {
            "max_poll_records": self.max_batch,
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
            "rebalance_timeout_ms": self.rebalance_timeout_ms,
            "max_poll_interval_ms": self.max_poll_interval_ms,
        }


def validate_trigger(row: Mapping[str, Any]) -> KafkaTriggerConfig:
    """The trigger's Kafka config; `InvalidInput` naming the first field that is wrong."""
    try:
        return KafkaTriggerConfig.model_validate(dict(row))
    except ValidationError as exc:
        raise _invalid(exc) from None


def parse_resource(value: Any) -> KafkaResource:
    """A `kafka` resource value; `InvalidInput` naming the first field that is wrong."""
    try:
        return KafkaResource.model_validate(value)
    except ValidationError as exc:
        raise _invalid(exc) from None


def connection_kwargs(resource: KafkaResource) -> dict[str, Any]:
    """The aiokafka client arguments (brokers and security) for `resource`.

    Reads and parses the PEM strings: blocking work, to be run off the event loop.
    """
    security = resource.security
    kwargs: dict[str, Any] = {
        "bootstrap_servers": list(resource.brokers),
        "security_protocol": security.label,
    }
    if isinstance(security, _Sasl):
        kwargs.update(
            sasl_mechanism=security.mechanism,
            sasl_plain_username=security.username,
            sasl_plain_password=security.password,
        )
    if isinstance(security, _Tls):
        kwargs["ssl_context"] = ssl_context(security)
    return kwargs


def ssl_context(tls: _Tls) -> ssl.SSLContext:
    """A client TLS context trusting `tls.ca` (else the system CAs), with the client identity.

    The certificate and key go through files in a private temporary directory, removed before
    returning: `ssl` loads a client identity from files only.
    """
    try:
        context = ssl.create_default_context(cadata=tls.ca)
    except (ssl.SSLError, ValueError) as exc:
        raise InvalidInput("security.ca", f"not a usable PEM certificate: {exc}") from None
    if tls.certificate is None:
        return context
    with tempfile.TemporaryDirectory(prefix="gateway-kafka-") as directory:
        certificate = Path(directory, "certificate.pem")
        certificate.write_text(tls.certificate)
        key = None
        if tls.key is not None:
            key = Path(directory, "key.pem")
            key.write_text(tls.key)
        try:
            context.load_cert_chain(certificate, key, password=tls.key_password)
        except ssl.SSLError as exc:
            raise InvalidInput(
                "security.certificate",
                f"the certificate, key and key_password do not load together: {exc}",
            ) from None
    return context


def _invalid(exc: ValidationError) -> InvalidInput:
    """The first problem of `exc`, as `InvalidInput` naming its field."""
    problem = exc.errors()[0]
    return InvalidInput(_field_name(problem) or "value", problem["msg"])


def _field_name(problem: ErrorDetails) -> str:
    """`security.mechanism`, `topics[1]`: the location without the union's tag."""
    name = ""
    for part in problem["loc"]:
        if isinstance(part, int):
            name += f"[{part}]"
        elif name == "security" and part in _LABELS:
            continue
        else:
            name += f".{part}" if name else part
    if problem["type"] in ("union_tag_invalid", "union_tag_not_found"):
        name += ".label"
    return name

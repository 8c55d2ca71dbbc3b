"""The configuration of MQTT triggers and the `mqtt` resource, validated when they are written.

Kept apart from the listener so that trigger writes can be validated without the client library.

Sessions are persistent unless the trigger asks otherwise: v3 ``clean_session`` and v5
``clean_start`` default to false, and v5 sessions outlive a disconnection by
`DEFAULT_SESSION_EXPIRY_S`, so QoS 1 and 2 messages published while no instance is connected are
kept by the broker and delivered on the next connection. The client id defaults to one derived
from the trigger, which the broker needs to find the session again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from gateway.listeners.config_parsing import parse_config
from gateway.listeners.lease import TriggerRef

DEFAULT_SESSION_EXPIRY_S: Final = 86_400
_MAX_U32: Final = 2**32 - 1


def _qos_level(value: Any) -> Any:
    """Windmill stores ``"qos0"``..``"qos2"``; plain 0..2 are taken too."""
    if isinstance(value, str) and value in ("qos0", "qos1", "qos2"):
        return int(value[-1])
    return value


def _check_topic_filter(topic: str) -> str:
    levels = topic.split("/")
    if any(("+" in level or "#" in level) and len(level) > 1 for level in levels):
        raise ValueError(f"{topic!r}: '+' and '#' must each be a whole topic level")
    if "#" in levels[:-1]:
        raise ValueError(f"{topic!r}: '#' must be the last topic level")
    return topic


QoS = Annotated[Literal[0, 1, 2], BeforeValidator(_qos_level)]
TopicFilter = Annotated[str, Field(min_length=1), AfterValidator(_check_topic_filter)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class MqttSubscription(_Model):
    """One topic filter and the highest QoS the broker may deliver it with."""

    topic: TopicFilter
    qos: QoS = 0


class V3Config(_Model):
    """MQTT 3.1.1 options."""

    clean_session: bool = False


class V5Config(_Model):
    """MQTT 5 options."""

    clean_start: bool = False
    session_expiry_interval: int = Field(default=DEFAULT_SESSION_EXPIRY_S, ge=0, le=_MAX_U32)
    topic_alias_maximum: int = Field(default=65535, ge=0, le=65535)


class MqttTriggerConfig(_Model):
    """The `mqtt_trigger` columns a listener needs."""

    mqtt_resource_path: str = Field(min_length=1)
    subscribe_topics: list[MqttSubscription] = Field(min_length=1)
    client_version: Literal["v3", "v5"] = "v5"
    client_id: str | None = Field(default=None, max_length=65535)
    v3_config: V3Config = V3Config()
    v5_config: V5Config = V5Config()

    @model_validator(mode="before")
    @classmethod
    def _nulls_take_defaults(cls, row: Any) -> Any:
        if isinstance(row, Mapping):
            return {key: value for key, value in row.items() if value is not None}
        return row

    @property
    def delivery_guarantee(self) -> Literal["at-most-once", "at-least-once"]:
        """What the trigger promises about each message: QoS 1 everywhere is at-least-once.

        QoS 0 has no acknowledgement. QoS 2 is acknowledged (PUBREC) by the client library
        before the listener sees the message, so the broker never resends it: a message received
        but not yet committed when the connection drops is lost.
        """
        at_least_once = all(s.qos == 1 for s in self.subscribe_topics)
        return "at-least-once" if at_least_once else "at-most-once"

    def client_id_for(self, trigger: TriggerRef) -> str:
        """The configured client id, else one derived from the trigger (stable, 23 characters)."""
        if self.client_id:
            return self.client_id
        digest = hashlib.blake2b(f"{trigger.workspace_id}/{trigger.path}".encode(), digest_size=10)
        return f"gw-{digest.hexdigest()}"


def validate_trigger(row: Mapping[str, Any]) -> MqttTriggerConfig:
    """The trigger's configuration; InvalidInput naming the field when it is unusable."""
    return parse_config(MqttTriggerConfig, row, "")


class MqttCredentials(_Model):
    """A user name and password; an empty user name means none."""

    username: str = ""
    password: str | None = Field(default=None, repr=False)


class MqttTls(_Model):
    """TLS: the CA to trust (system roots when empty) and an optional client certificate, PEM."""

    enabled: bool = False
    ca_certificate: str | None = Field(default=None, repr=False)
    client_certificate: str | None = Field(default=None, repr=False)
    client_key: str | None = Field(default=None, repr=False)
    pkcs12_client_certificate: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _client_certificate_is_pem(self) -> MqttTls:
        if self.pkcs12_client_certificate:
            raise ValueError(
                "PKCS#12 client certificates are not supported: give client_certificate and "
                "client_key in PEM"
            )
        if bool(self.client_certificate) != bool(self.client_key):
            raise ValueError("client_certificate and client_key go together")
        return self


class MqttResource(_Model):
    """An `mqtt` resource: where the broker is and how to log in."""

    broker: str = Field(min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    credentials: MqttCredentials | None = None
    tls: MqttTls | None = None


def parse_resource(value: Any) -> MqttResource:
    """An `mqtt` resource value; InvalidInput naming the field when it is unusable."""
    return parse_config(MqttResource, value, "resource")

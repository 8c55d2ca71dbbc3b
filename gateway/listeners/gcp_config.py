"""What a GCP Pub/Sub trigger needs before it can connect or take a push: its config and its
`gcloud` resource. Kept apart from the listener so that trigger writes and the push endpoint
work without the client library.

- `validate_trigger(row)`: the `gcp_trigger` columns, checked when a trigger is written;
- `parse_resource(value)`: a service-account key (Windmill's `gcloud` type: `project_id`,
  `client_email`, `private_key` with its newlines possibly written as ``\\n``, ...), or, for
  tests, ``{"project_id", "emulator_host"}`` naming a Pub/Sub emulator that needs no key;
- `push_path(workspace, trigger path)`: where Pub/Sub pushes a push trigger's messages.

Both validators raise `InvalidInput` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.errors import InvalidInput
from gateway.listeners.config_parsing import parse_config

PUSH_PREFIX: Final = "/api/gcp/w"
# Pub/Sub's rule for topic and subscription ids.
_RESOURCE_ID: Final = re.compile(r"^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$")
_FULL_NAME: Final = re.compile(r"^projects/([^/]+)/(topics|subscriptions)/([^/]+)$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class DeliveryConfig(_Model):
    """How Pub/Sub authenticates its pushes: an OIDC token for `audience`, when `authenticate`."""

    authenticate: bool = False
    audience: str | None = None

    @field_validator("audience", mode="before")
    @classmethod
    def _empty_is_absent(cls, value: Any) -> Any:
        return None if value == "" else value


class GcpTriggerConfig(_Model):
    """The Pub/Sub columns of a `gcp_trigger` row."""

    gcp_resource_path: str = Field(min_length=1)
    topic_id: str
    subscription_id: str
    delivery_type: Literal["pull", "push"] = "pull"
    delivery_config: DeliveryConfig | None = None
    subscription_mode: Literal["existing", "create_update"] = "create_update"
    auto_acknowledge_msg: bool = True
    ack_deadline: int | None = Field(default=None, ge=10, le=600)

    @field_validator("delivery_type", "subscription_mode", "auto_acknowledge_msg", mode="before")
    @classmethod
    def _null_is_default(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return cls.model_fields[str(info.field_name)].default
        return value

    @field_validator("gcp_resource_path")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise InvalidInput("gcp_resource_path", "cannot be blank")
        return value

    @field_validator("topic_id", "subscription_id")
    @classmethod
    def _resource_id(cls, value: str, info: ValidationInfo) -> str:
        field = str(info.field_name)
        collection = "topics" if field == "topic_id" else "subscriptions"
        full = _FULL_NAME.match(value)
        if full is not None and full.group(2) != collection:
            raise InvalidInput(field, f"{value!r} is not a projects/<p>/{collection}/<id> name")
        bare = full.group(3) if full is not None else value
        if not _RESOURCE_ID.match(bare) or bare.lower().startswith("goog"):
            raise InvalidInput(
                field,
                f"{bare!r} is not a Pub/Sub id: 3 to 255 letters, digits and - _ . ~ + %, "
                "starting with a letter, not with goog",
            )
        return value

    @model_validator(mode="after")
    def _push_needs_delivery_config(self) -> Self:
        if self.delivery_type == "push" and self.delivery_config is None:
            raise InvalidInput("delivery_config", "required when delivery_type is push")
        return self

    def topic_path(self, project_id: str) -> str:
        """The topic's full name (`topic_id` may already be one)."""
        return _full_name(self.topic_id, "topics", project_id)

    def subscription_path(self, project_id: str) -> str:
        """The subscription's full name (`subscription_id` may already be one)."""
        return _full_name(self.subscription_id, "subscriptions", project_id)


class GcpResource(_Model):
    """A `gcloud` resource: a service-account key, or an emulator for tests."""

    model_config = ConfigDict(extra="allow", frozen=True)

    project_id: str = Field(min_length=1)
    client_email: str | None = None
    private_key: str | None = Field(default=None, repr=False)
    emulator_host: str | None = None

    @field_validator("private_key")
    @classmethod
    def _real_newlines(cls, key: str | None) -> str | None:
        return None if key is None else key.replace("\\n", "\n")

    @model_validator(mode="after")
    def _key_or_emulator(self) -> Self:
        if self.emulator_host is None:
            for field in ("client_email", "private_key"):
                if not getattr(self, field):
                    raise InvalidInput(field, "required in a service-account key")
        return self

    def service_account_info(self) -> dict[str, Any]:
        """The key as google-auth reads it (every field of the resource)."""
        info = self.model_dump(exclude={"emulator_host"}, exclude_none=True)
        info.setdefault("token_uri", "https://oauth2.googleapis.com/token")
        return info


def push_path(workspace_id: str, trigger_path: str) -> str:
    """The path Pub/Sub pushes a push trigger's messages to."""
    return f"{PUSH_PREFIX}/{workspace_id}/{trigger_path}"


def validate_trigger(row: Mapping[str, Any]) -> GcpTriggerConfig:
    """The trigger's Pub/Sub config; `InvalidInput` naming the first field that is wrong."""
    return parse_config(GcpTriggerConfig, dict(row), "")


def parse_resource(value: Any) -> GcpResource:
    """A `gcloud` resource value; `InvalidInput` naming the first field that is wrong."""
    return parse_config(GcpResource, value, "resource")


def _full_name(value: str, collection: str, project_id: str) -> str:
    if _FULL_NAME.match(value):
        return value
    return f"projects/{project_id}/{collection}/{value}"

"""What an SQS trigger needs before it can connect: its config, its AWS resource, and the
receive loop's timings. Kept apart from the listener so that trigger writes can be validated
without the client library.

- `validate_trigger(row)`: the `sqs_trigger` columns (`queue_url`, `aws_resource_path`,
  `aws_auth_resource_type`, `message_attributes`), checked when a trigger is written;
- `parse_resource(value, auth_type)`: the resource the trigger names. With `credentials`
  (Windmill's `aws` type) ``{"awsAccessKeyId", "awsSecretAccessKey", "region"?,
  "endpoint_url"?}``; with `oidc` (Windmill's `aws_oidc` type) ``{"roleArn"?, "region"?,
  "endpoint_url"?}``, the role being assumed with the web identity token of this instance
  (`AWS_WEB_IDENTITY_TOKEN_FILE`) and `AWS_ROLE_ARN` standing in for a missing `roleArn`;
- `SqsOptions`: long polling, batch size, visibility, and where STS and SQS are reached when the
  resource does not say (the standard `AWS_ENDPOINT_URL*` variables);
- `web_identity_request` and `credentials_from_sts`: the STS `AssumeRoleWithWebIdentity` call of
  an `oidc` trigger, built and read without the network.

Both validators raise `InvalidInput` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.errors import InvalidInput
from gateway.listeners.config_parsing import parse_config

ALL_ATTRIBUTES: Final = "All"
DEFAULT_REGION: Final = "us-east-1"
MAX_RECEIVE: Final = 10
"""SQS returns at most ten messages per receive, and takes at most ten entries per batch call."""
MAX_WAIT_S: Final = 20
# A message attribute name: letters, digits, `_ - .`, up to 256; `prefix.*` selects by prefix.
_ATTRIBUTE_NAME: Final = re.compile(r"^[A-Za-z0-9_\-.]{1,256}$")
_RESERVED_PREFIXES: Final = ("aws.", "amazon.")
# https://sqs.<region>.amazonaws.com[.cn]/<account>/<name>, or <region>.queue.amazonaws.com
_REGION_IN_HOST: Final = (
    re.compile(r"(?:^|\.)sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$"),
    re.compile(r"^([a-z0-9-]+)\.queue\.amazonaws\.com(?:\.cn)?$"),
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class SqsTriggerConfig(_Model):
    """The SQS columns of an `sqs_trigger` row."""

    queue_url: str = Field(min_length=1, max_length=255)
    aws_resource_path: str = Field(min_length=1)
    aws_auth_resource_type: Literal["credentials", "oidc"] = "credentials"
    message_attributes: tuple[str, ...] | None = None

    @field_validator("aws_auth_resource_type", mode="before")
    @classmethod
    def _default_auth(cls, value: Any) -> Any:
        return "credentials" if value is None else value

    @field_validator("aws_resource_path")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise InvalidInput("aws_resource_path", "cannot be blank")
        return value

    @field_validator("queue_url")
    @classmethod
    def _queue_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput("queue_url", f"{url!r} is not a queue URL (https://sqs...)")
        if not parts.path.strip("/"):
            raise InvalidInput("queue_url", f"{url!r} names no queue: its path is empty")
        return url

    @field_validator("message_attributes")
    @classmethod
    def _attribute_names(cls, names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if not names:
            return None
        for index, name in enumerate(names):
            if name == ALL_ATTRIBUTES:
                continue
            stem = name.removesuffix(".*")
            if (
                not _ATTRIBUTE_NAME.match(stem)
                or stem.startswith(".")
                or stem.endswith(".")
                or ".." in stem
                or stem.lower().startswith(_RESERVED_PREFIXES)
            ):
                raise InvalidInput(
                    f"message_attributes[{index}]",
                    f"{name!r} is not a message attribute name: up to 256 letters, digits, "
                    "_ - and inner dots, not starting with AWS. or Amazon.; `prefix.*` selects "
                    f"by prefix and {ALL_ATTRIBUTES} selects every attribute",
                )
        if ALL_ATTRIBUTES in names:
            return (ALL_ATTRIBUTES,)
        return tuple(dict.fromkeys(names))

    @property
    def is_fifo(self) -> bool:
        """Whether the queue is a FIFO queue (its name ends in `.fifo`)."""
        return urlsplit(self.queue_url).path.rstrip("/").endswith(".fifo")

    def region(self, resource: AwsResource) -> str:
        """The resource's region, else the one in the queue URL, else `us-east-1`."""
        if resource.region:
            return resource.region
        host = urlsplit(self.queue_url).hostname or ""
        for pattern in _REGION_IN_HOST:
            if found := pattern.match(host):
                return found.group(1)
        return DEFAULT_REGION


class _AwsResource(_Model):
    region: str | None = None
    endpoint_url: str | None = None

    @field_validator("region", "endpoint_url", mode="before")
    @classmethod
    def _empty_is_absent(cls, value: Any) -> Any:
        return None if value == "" else value


class AwsCredentialsResource(_AwsResource):
    """An `aws` resource: an access key pair."""

    access_key_id: str = Field(alias="awsAccessKeyId", min_length=1)
    secret_access_key: str = Field(alias="awsSecretAccessKey", min_length=1, repr=False)


class AwsOidcResource(_AwsResource):
    """An `aws_oidc` resource: the role to assume with this instance's web identity token."""

    role_arn: str | None = Field(default=None, alias="roleArn")


AwsResource = AwsCredentialsResource | AwsOidcResource


@dataclass(frozen=True, slots=True)
class SqsOptions:
    """How the gateway's SQS listeners behave, and where they reach AWS by default.

    Messages are received with `visibility_timeout_s`, and while a batch is in flight its
    visibility is extended to that again every `extend_every_s`. The web identity settings are
    the standard AWS variables (see `from_environ`).
    """

    wait_time_s: int = MAX_WAIT_S
    max_messages: int = MAX_RECEIVE
    visibility_timeout_s: int = 30
    extend_every_s: float = 10.0
    connect_timeout_s: float = 10.0
    endpoint_url: str | None = None
    sts_endpoint_url: str | None = None
    web_identity_token_file: str | None = None
    role_arn: str | None = None
    role_session_name: str = "gateway"
    assumed_role_duration_s: int = 3600
    refresh_before_expiry_s: float = 300.0

    def __post_init__(self) -> None:
        if not 0 <= self.wait_time_s <= MAX_WAIT_S:
            raise ValueError(f"wait_time_s must be 0 to {MAX_WAIT_S}, got {self.wait_time_s}")
        if not 1 <= self.max_messages <= MAX_RECEIVE:
            raise ValueError(f"max_messages must be 1 to {MAX_RECEIVE}, got {self.max_messages}")
        if not 0 < self.extend_every_s < self.visibility_timeout_s:
            raise ValueError(
                f"extend_every_s ({self.extend_every_s}) must be positive and shorter than "
                f"visibility_timeout_s ({self.visibility_timeout_s}), or a batch in flight "
                "becomes visible to other consumers"
            )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> SqsOptions:
        """The defaults, with endpoints and web identity from the standard AWS variables."""
        shared = environ.get("AWS_ENDPOINT_URL") or None
        return cls(
            endpoint_url=environ.get("AWS_ENDPOINT_URL_SQS") or shared,
            sts_endpoint_url=environ.get("AWS_ENDPOINT_URL_STS") or shared,
            web_identity_token_file=environ.get("AWS_WEB_IDENTITY_TOKEN_FILE") or None,
            role_arn=environ.get("AWS_ROLE_ARN") or None,
            role_session_name=environ.get("AWS_ROLE_SESSION_NAME") or "gateway",
        )


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    """An access key, with the session token and expiry of temporary credentials."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None

    def expire_within(self, seconds: float, now: datetime) -> bool:
        """Whether the credentials stop working within `seconds` of `now`."""
        return self.expires_at is not None and self.expires_at - now <= timedelta(seconds=seconds)


def web_identity_request(
    role_arn: str, token: str, session_name: str, duration_s: int
) -> dict[str, Any]:
    """The arguments of STS `AssumeRoleWithWebIdentity` for `role_arn` with the OIDC `token`."""
    token = token.strip()
    if not token:
        raise InvalidInput("web_identity_token", "the web identity token file is empty")
    return {
        "RoleArn": role_arn,
        "RoleSessionName": session_name,
        "WebIdentityToken": token,
        "DurationSeconds": duration_s,
    }


def credentials_from_sts(response: Mapping[str, Any]) -> AwsCredentials:
    """The temporary credentials in an `AssumeRoleWithWebIdentity` response."""
    try:
        issued = response["Credentials"]
        expiration = issued["Expiration"]
        return AwsCredentials(
            access_key_id=issued["AccessKeyId"],
            secret_access_key=issued["SecretAccessKey"],
            session_token=issued["SessionToken"],
            expires_at=(
                expiration
                if isinstance(expiration, datetime)
                else datetime.fromisoformat(str(expiration))
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"STS answered without usable credentials: missing or bad {exc}") from None


def validate_trigger(row: Mapping[str, Any]) -> SqsTriggerConfig:
    """The trigger's SQS config; `InvalidInput` naming the first field that is wrong."""
    return parse_config(SqsTriggerConfig, dict(row), "")


def parse_resource(value: Any, auth_type: str) -> AwsResource:
    """The AWS resource of a trigger with `aws_auth_resource_type` `auth_type`."""
    if auth_type == "oidc":
        return parse_config(AwsOidcResource, value, "resource")
    return parse_config(AwsCredentialsResource, value, "resource")

"""Every setting of the gateway in one validated object, read once at start-up.

Values come from `GATEWAY_*` environment variables, optionally from a YAML file named by
`GATEWAY_SETTINGS_FILE`; the environment wins over the file.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from gateway.errors import ConfigError

ENV_PREFIX = "GATEWAY_"


def default_instance_name() -> str:
    """Hostname plus a short random suffix, unique per process."""
    return f"{socket.gethostname()}-{secrets.token_hex(3)}"


class Settings(BaseModel):
    """The gateway's configuration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str = "sqlite:///gateway.db"
    database_pool_size: int = Field(default=10, ge=1)
    migrate_on_start: bool = True
    # The key that wraps the workspace keys of secret variables: base64 of 32 bytes, given
    # directly or in a file; SQLite without either keeps one in a file beside the database.
    master_key: SecretStr | None = None
    master_key_file: Path | None = None

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    public_base_url: str | None = None

    instance_name: str = Field(default_factory=default_instance_name)

    executor_slots: int = Field(default=4, ge=0)
    job_timeout_s: float = Field(default=900.0, gt=0)
    job_memory_limit_mb: int | None = Field(default=2048, ge=16)
    # Jobs of a gateway started as root run as this user; otherwise as the gateway's own user.
    job_user: str = "nobody"
    job_cpu_limit_s: int | None = Field(default=900, ge=1)
    job_max_open_files: int | None = Field(default=1024, ge=16)
    job_max_processes: int | None = Field(default=512, ge=8)
    job_max_file_bytes: int | None = Field(default=1024 * 1024 * 1024, ge=1024)
    max_result_bytes: int = Field(default=2 * 1024 * 1024, ge=64)
    max_log_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # Each JavaScript expression of a flow (input transforms, iterators, branch conditions).
    flow_expression_timeout_s: float = Field(default=1.0, gt=0, le=60)
    log_flush_interval_s: float = Field(default=0.5, gt=0)
    job_poll_interval_s: float = Field(default=1.0, gt=0)
    job_claim_batch: int = Field(default=8, ge=1)
    job_heartbeat_interval_s: float = Field(default=5.0, gt=0)
    zombie_timeout_s: float = Field(default=30.0, gt=0)
    max_zombie_requeues: int = Field(default=3, ge=0)
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    dedup_retention_days: int = Field(default=7, ge=1)

    # Records of one Kafka fetch or JetStream pull taken as one job transaction.
    listener_max_batch: int = Field(default=1000, ge=1, le=100_000)
    lease_claim_interval_s: float = Field(default=15.0, gt=0)
    lease_ping_interval_s: float = Field(default=5.0, gt=0)
    lease_stale_after_s: float = Field(default=15.0, gt=0)
    http_route_max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    http_route_sync_timeout_s: float = Field(default=600.0, gt=0)
    http_route_signature_tolerance_s: float = Field(default=300.0, gt=0)
    http_route_version_check_s: float = Field(default=3.0, gt=0)
    http_route_auth_cache_s: float = Field(default=10.0, ge=0)
    http_route_sse_ping_s: float = Field(default=5.0, gt=0)
    # Requests per second per route (token bucket of `_burst`); `_limits`: per route
    # ("workspace/trigger path" -> rate), also when no default is set.
    http_route_rate_limit_per_s: float | None = Field(default=None, gt=0)
    http_route_rate_limit_burst: int = Field(default=100, ge=1)
    http_route_rate_limits: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    api_token_rate_limit_per_s: float | None = Field(default=None, gt=0)
    api_token_rate_limit_burst: int = Field(default=200, ge=1)
    # Static routes serve files from below this folder only; unset, they are refused.
    static_root: Path | None = None

    smtp_host: str = "127.0.0.1"
    smtp_port: int | None = Field(default=None, ge=0, le=65535)
    email_domain: str | None = None
    smtp_max_message_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    email_max_attachment_bytes: int | None = Field(default=5 * 1024 * 1024, ge=1)
    smtp_tls_cert_file: Path | None = None
    smtp_tls_key_file: Path | None = None

    # A source message larger than this goes to the quarantine instead of becoming a job.
    max_event_bytes: int | None = Field(default=5 * 1024 * 1024, ge=1024)
    listener_backoff_base_s: float = Field(default=1.0, gt=0)
    listener_backoff_cap_s: float = Field(default=60.0, gt=0)

    log_format: Literal["text", "json"] = "text"
    source_lag_cache_s: float = Field(default=15.0, ge=0)
    source_lag_timeout_s: float = Field(default=5.0, gt=0)
    alert_interval_s: float = Field(default=30.0, gt=0)
    alert_trigger_error_after_s: float = Field(default=300.0, ge=0)
    alert_unheld_after_s: float = Field(default=60.0, ge=0)
    alert_quarantine_window_s: float = Field(default=3600.0, gt=0)
    alert_quarantine_min_events: int = Field(default=1, ge=1)
    alert_lag_messages: int | None = Field(default=None, ge=0)
    alert_lag_bytes: int | None = Field(default=None, ge=0)
    alert_webhook_url: str | None = None
    # Outbound connections made on a user's behalf (WebSocket triggers, the alert webhook):
    # host names, *.suffix patterns, addresses or ranges, comma-separated (see gateway.net_guard).
    outbound_deny_hosts: list[str] = Field(default_factory=list)
    outbound_allow_hosts: list[str] = Field(default_factory=list)
    outbound_allow_link_local: bool = False
    alert_webhook_timeout_s: float = Field(default=5.0, gt=0)

    @field_validator("outbound_deny_hosts", "outbound_allow_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return (
            [part for part in value.split(",") if part.strip()] if isinstance(value, str) else value
        )

    @field_validator("outbound_deny_hosts", "outbound_allow_hosts")
    @classmethod
    def _host_entries(cls, value: list[str], info: ValidationInfo) -> list[str]:
        from gateway.net_guard import HostList  # the guard reads settings: imported when used

        HostList.parse(value, f"{ENV_PREFIX}{(info.field_name or '').upper()}")
        return value

    @field_validator("http_route_rate_limits", mode="before")
    @classmethod
    def _json_mapping(cls, value: Any) -> Any:
        # From the environment a mapping arrives as JSON text.
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError(
                f"unknown database URL {value!r}: use sqlite:///path.db or postgresql://..."
            )
        return value

    @property
    def base_url(self) -> str:
        """The URL jobs use to call back into this gateway's API (the configured one; a
        running gateway uses its bound address unless `public_base_url` is set)."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        return self.local_url(self.http_port)

    def local_url(self, port: int) -> str:
        """The URL of this host's HTTP server on `port` (a wildcard host is reached locally)."""
        host = "127.0.0.1" if self.http_host in ("0.0.0.0", "::") else self.http_host
        return f"http://{host}:{port}"

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read the settings file (if any), then the environment, then explicit overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        file_name = env.get(f"{ENV_PREFIX}SETTINGS_FILE")
        if file_name:
            values.update(_read_settings_file(Path(file_name)))
        known = set(cls.model_fields)
        for key, raw in env.items():
            if not key.startswith(ENV_PREFIX) or key == f"{ENV_PREFIX}SETTINGS_FILE":
                continue
            name = key[len(ENV_PREFIX) :].lower()
            if name in known:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{ENV_PREFIX}{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"invalid settings: {problems}") from None


def _read_settings_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"settings file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"settings file {path} must hold a mapping of setting names")
    return {str(k): v for k, v in data.items()}

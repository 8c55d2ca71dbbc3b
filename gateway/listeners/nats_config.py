"""The configuration of NATS triggers and the `nats` resource, validated when they are written.

Kept apart from the listener so that trigger writes can be validated without the client library.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from gateway.errors import InvalidInput
from gateway.listeners.config_parsing import parse_config

_SCHEMES: Final = ("nats://", "tls://", "ws://", "wss://")
_NAME_FORBIDDEN: Final = frozenset(" \t\r\n.*>/\\")


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def _check_subject(subject: str) -> str:
    tokens = subject.split(".")
    if any(not token or any(c.isspace() for c in token) for token in tokens):
        raise ValueError(f"{subject!r} is not a subject: dot-separated tokens without spaces")
    if ">" in tokens[:-1] or any(len(t) > 1 and ("*" in t or ">" in t) for t in tokens):
        raise ValueError(f"{subject!r}: '*' must be a whole token and '>' the last token")
    return subject


def _check_name(name: str) -> str:
    if not name or _NAME_FORBIDDEN & set(name):
        raise ValueError(f"{name!r} must be non-empty, without spaces, '.', '*', '>' or '/'")
    return name


def _check_server(server: str) -> str:
    if not server.strip() or any(c.isspace() for c in server.strip()):
        raise ValueError(f"{server!r} is not a server address")
    return server


Subject = Annotated[str, AfterValidator(_check_subject)]
StreamOrConsumerName = Annotated[str, AfterValidator(_check_name)]
ServerAddress = Annotated[str, AfterValidator(_check_server)]


class NatsTriggerConfig(_Model):
    """The `nats_trigger` columns a listener needs."""

    nats_resource_path: str = Field(min_length=1)
    subjects: list[Subject] = Field(min_length=1)
    use_jetstream: bool = False
    stream_name: StreamOrConsumerName | None = None
    consumer_name: StreamOrConsumerName | None = None

    @model_validator(mode="before")
    @classmethod
    def _blanks_take_defaults(cls, row: Any) -> Any:
        # Rows hold NULL for unset columns, and forms send "" for the names core NATS ignores.
        if isinstance(row, Mapping):
            return {key: value for key, value in row.items() if value is not None and value != ""}
        return row

    @model_validator(mode="after")
    def _jetstream_names_given(self) -> NatsTriggerConfig:
        if self.use_jetstream:
            for field in ("stream_name", "consumer_name"):
                if not getattr(self, field):
                    raise InvalidInput(field, "required when use_jetstream is true")
        return self

    @property
    def delivery_guarantee(self) -> Literal["at-most-once", "at-least-once"]:
        """What a trigger with this configuration promises about each message."""
        return "at-least-once" if self.use_jetstream else "at-most-once"


def validate_trigger(row: Mapping[str, Any]) -> NatsTriggerConfig:
    """The trigger's configuration; InvalidInput naming the field when it is unusable."""
    return parse_config(NatsTriggerConfig, row, "")


class NoAuth(_Model):
    """No credentials."""

    label: Literal["NO_AUTH"] = "NO_AUTH"


class TokenAuth(_Model):
    """A token."""

    label: Literal["TOKEN"] = "TOKEN"
    token: str = Field(min_length=1, repr=False)


class UserPasswordAuth(_Model):
    """A user name and password."""

    label: Literal["USER_PASSWORD"] = "USER_PASSWORD"
    user: str = Field(min_length=1)
    password: str = Field(repr=False)


class NkeyAuth(_Model):
    """An NKey seed (the server knows the public key)."""

    label: Literal["NKEY"] = "NKEY"
    seed: str = Field(min_length=1, repr=False)


class JwtAuth(_Model):
    """A user JWT and the seed that signs the server's nonce."""

    label: Literal["JWT"] = "JWT"
    jwt: str = Field(min_length=1, repr=False)
    seed: str = Field(min_length=1, repr=False)


class CredsAuth(_Model):
    """The text of a `.creds` file (a user JWT and its seed)."""

    label: Literal["CREDS"] = "CREDS"
    creds: str = Field(min_length=1, repr=False)


NatsAuth = Annotated[
    NoAuth | TokenAuth | UserPasswordAuth | NkeyAuth | JwtAuth | CredsAuth,
    Field(discriminator="label"),
]


class NatsResource(_Model):
    """A `nats` resource: servers (``host:port`` or URLs), TLS, and one way to authenticate.

    `auth` takes Windmill's form (``{"label": "USER_PASSWORD", "user": ..., "password": ...}``) or
    the bare one (``"none"``, ``{"token"}``, ``{"user", "password"}``, ``{"seed"}``,
    ``{"jwt", "seed"}``, ``{"creds"}``).
    """

    servers: list[ServerAddress] = Field(min_length=1)
    require_tls: bool = False
    auth: NatsAuth = NoAuth()

    @field_validator("auth", mode="before")
    @classmethod
    def _label_bare_auth(cls, auth: Any) -> Any:
        if auth is None or auth in ("none", "NO_AUTH") or auth == {}:
            return {"label": "NO_AUTH"}
        if isinstance(auth, Mapping) and "label" not in auth:
            keys = {key for key, value in auth.items() if value}
            label = next(
                (label for label, needed in _BARE_AUTH if needed <= keys),
                "NO_AUTH" if not keys else None,
            )
            if label is None:
                raise ValueError(f"cannot tell the kind of authentication from keys {sorted(keys)}")
            return {**auth, "label": label}
        return auth

    def urls(self) -> list[str]:
        """The servers as URLs (``nats://`` added to a bare ``host:port``)."""
        stripped = (server.strip() for server in self.servers)
        return [s if s.startswith(_SCHEMES) else f"nats://{s}" for s in stripped]

    def credentials(self) -> dict[str, str]:
        """The client's connect options for `auth`; ``creds`` is the text of a `.creds` file."""
        auth = self.auth
        if isinstance(auth, TokenAuth):
            return {"token": auth.token}
        if isinstance(auth, UserPasswordAuth):
            return {"user": auth.user, "password": auth.password}
        if isinstance(auth, NkeyAuth):
            return {"nkeys_seed_str": auth.seed}
        if isinstance(auth, JwtAuth):
            return {"creds": _creds_text(auth.jwt, auth.seed)}
        if isinstance(auth, CredsAuth):
            return {"creds": auth.creds}
        return {}

    def wants_tls(self) -> bool:
        """Whether the connection must be encrypted."""
        return self.require_tls or any(url.startswith(("tls://", "wss://")) for url in self.urls())


# The most specific shape first: a JWT also has a seed.
_BARE_AUTH: Final = (
    ("JWT", {"jwt", "seed"}),
    ("CREDS", {"creds"}),
    ("NKEY", {"seed"}),
    ("USER_PASSWORD", {"user"}),
    ("TOKEN", {"token"}),
)


def _creds_text(jwt: str, seed: str) -> str:
    return (
        f"-----BEGIN NATS USER JWT-----\n{jwt.strip()}\n------END NATS USER JWT------\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{seed.strip()}\n------END USER NKEY SEED------\n"
    )


def parse_resource(value: Any) -> NatsResource:
    """A `nats` resource value; InvalidInput naming the field when it is unusable."""
    return parse_config(NatsResource, value, "resource")

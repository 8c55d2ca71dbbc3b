"""The configuration of WebSocket triggers, validated when they are written and when they connect.

Kept apart from the listener so that trigger writes can be validated without the client library.
The filters (`filters`, `filter_logic`) are the job sink's and are validated by
`gateway.triggers.filters`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from gateway.errors import InvalidInput

_URL_SCHEMES: Final = ("ws://", "wss://")
_RUNNABLE_PREFIXES: Final = {"$script:": False, "$flow:": True}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class RunnableCall(_Model):
    """A script (or flow) run for its result, with these args."""

    path: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)
    is_flow: bool = False

    @field_validator("args", mode="before")
    @classmethod
    def _no_args(cls, args: Any) -> Any:
        return {} if args is None else args


class RawMessage(_Model):
    """An initial message sent as it is written."""

    raw_message: str

    @property
    def text(self) -> str:
        """The frame to send: the UI stores JSON-encoded strings, so outer quotes are dropped."""
        quoted = len(self.raw_message) >= 2 and self.raw_message[0] == self.raw_message[-1] == '"'
        return self.raw_message[1:-1] if quoted else self.raw_message


class RunnableResultMessage(_Model):
    """An initial message that is the result of running a script (or flow)."""

    runnable_result: RunnableCall


class Heartbeat(_Model):
    """A message sent every `interval_secs`; ``{{state}}`` becomes the last `state_field` seen."""

    interval_secs: int = Field(gt=0)
    message: str
    state_field: str | None = None


class WebsocketTriggerConfig(_Model):
    """The `websocket_trigger` columns a listener needs."""

    url: str = Field(min_length=1, max_length=1000)
    initial_messages: list[RawMessage | RunnableResultMessage] = Field(default_factory=list)
    url_runnable_args: dict[str, Any] = Field(default_factory=dict)
    can_return_message: bool = False
    can_return_error_result: bool = False
    heartbeat: Heartbeat | None = None

    @field_validator("url")
    @classmethod
    def _known_url(cls, url: str) -> str:
        if url.startswith(_URL_SCHEMES):
            return url
        for prefix in _RUNNABLE_PREFIXES:
            if url.startswith(prefix) and url.removeprefix(prefix).strip():
                return url
        raise ValueError(
            "must be a ws:// or wss:// URL, or $script:<path> or $flow:<path> naming the runnable "
            "that returns it"
        )

    @field_validator("initial_messages", "url_runnable_args", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return [] if info.field_name == "initial_messages" else {}
        return value

    @property
    def url_runnable(self) -> RunnableCall | None:
        """The runnable whose result is the URL, when `url` names one."""
        for prefix, is_flow in _RUNNABLE_PREFIXES.items():
            if self.url.startswith(prefix):
                path = self.url.removeprefix(prefix).strip()
                return RunnableCall(path=path, args=self.url_runnable_args, is_flow=is_flow)
        return None


def validate_trigger(row: Mapping[str, Any]) -> WebsocketTriggerConfig:
    """The trigger's configuration; InvalidInput naming the field when it is unusable."""
    try:
        return WebsocketTriggerConfig.model_validate(dict(row))
    except ValidationError as exc:
        problem = exc.errors()[0]
        location = ".".join(str(part) for part in problem["loc"])
        reason = problem["msg"].removeprefix("Value error, ")
        raise InvalidInput(location or "body", reason) from None

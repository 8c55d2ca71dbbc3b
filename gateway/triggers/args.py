"""Job args from an event: the runnable's format (V1 or V2, with or without a preprocessor) and
the arg shapes Windmill gives each listener kind.

With ``P`` the kind's payload function, ``I`` the event's trigger info and ``K`` the kind:

================  ==============================================
V2                ``P_v2``
V2, preprocessor  ``{"event": {...P_v2, "kind": K, ...I}}``
V1                ``P_v1``
V1, preprocessor  ``P_v1`` plus ``{"wm_trigger": {"kind": K, K: I}}``
================  ==============================================

Payload functions: Kafka and NATS give ``{"msg": <utf-8 text>}`` (V1) or ``{"payload": <base64>}``
(V2); MQTT ``{"payload": [<byte>, ...]}`` (V1) or ``{"payload": <base64>}`` (V2); SQS and
WebSocket ``{"msg": <text>}``; GCP ``{"payload": <base64 data>}``; PostgreSQL the row change;
email ``{"raw_email", "parsed_email", "email_extra_args"?}``; the last four alike in both formats.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final, TypeAlias

from gateway.triggers.event import Event

INVALID_UTF8_TEXT: Final = "Error: invalid utf8 payload"
_ROW_CHANGE_KEYS: Final = ("transaction_type", "schema_name", "table_name", "old_row", "row")


class ArgsError(ValueError):
    """An event that cannot become job args: an unknown kind, or a payload of the wrong type."""


class ArgsFormat(Enum):
    """V1 is Windmill's legacy arg shape, V2 the current one."""

    V1 = "v1"
    V2 = "v2"


@dataclass(frozen=True, slots=True)
class RunnableShape:
    """What job creation needs to know about the target script or flow.

    ``preprocessor_params`` lists the preprocessor's parameter names; leave it empty when the
    preprocessor's language is one whose signature is not parsed.
    """

    main_params: frozenset[str] = frozenset()
    main_param_types: Mapping[str, str] = field(default_factory=dict)
    has_preprocessor: bool = False
    preprocessor_params: tuple[str, ...] = ()

    @classmethod
    def from_schema(
        cls,
        main_schema: Mapping[str, Any] | None,
        *,
        has_preprocessor: bool = False,
        preprocessor_params: Sequence[str] = (),
    ) -> RunnableShape:
        """The shape of a runnable whose ``main`` has the JSON schema ``main_schema``."""
        properties: Mapping[str, Any] = (main_schema or {}).get("properties") or {}
        return cls(
            main_params=frozenset(properties),
            main_param_types={
                name: spec["type"]
                for name, spec in properties.items()
                if isinstance(spec, Mapping) and isinstance(spec.get("type"), str)
            },
            has_preprocessor=has_preprocessor,
            preprocessor_params=tuple(preprocessor_params),
        )


def detect_format(kind: str, shape: RunnableShape) -> ArgsFormat:
    """The arg format Windmill would use for a ``kind`` event sent to a runnable of ``shape``."""
    if shape.has_preprocessor:
        params = shape.preprocessor_params
        legacy = "wm_trigger" in params or (bool(params) and "event" not in params)
        return ArgsFormat.V1 if legacy else ArgsFormat.V2
    if kind == "mqtt":
        legacy = shape.main_param_types.get("payload") == "array"
    elif kind in ("kafka", "nats"):
        legacy = "msg" in shape.main_params
    else:
        legacy = False
    return ArgsFormat.V1 if legacy else ArgsFormat.V2


def build_args(event: Event, shape: RunnableShape) -> dict[str, Any]:
    """The job args for ``event`` sent to a runnable of ``shape``; ArgsError on a bad payload."""
    payload_functions = _PAYLOAD_FUNCTIONS.get(event.kind)
    if payload_functions is None:
        raise ArgsError(f"no arg builder for trigger kind {event.kind!r}")
    args_format = detect_format(event.kind, shape)
    v1, v2 = payload_functions
    if args_format is ArgsFormat.V2:
        args = v2(event.payload, event.kind)
        if shape.has_preprocessor:
            return {"event": {**args, "kind": event.kind, **event.info}}
        return args
    args = v1(event.payload, event.kind)
    if shape.has_preprocessor:
        args["wm_trigger"] = {"kind": event.kind, event.kind: dict(event.info)}
    return args


def _bytes(payload: Any, kind: str) -> bytes:
    if not isinstance(payload, bytes):
        raise ArgsError(f"{kind} payload must be bytes, got {type(payload).__name__}")
    return payload


def _text(payload: Any, kind: str) -> str:
    if not isinstance(payload, str):
        raise ArgsError(f"{kind} payload must be str, got {type(payload).__name__}")
    return payload


def _record(payload: Any, kind: str, required: Sequence[str]) -> dict[str, Any]:
    if not isinstance(payload, Mapping):
        raise ArgsError(f"{kind} payload must be an object, got {type(payload).__name__}")
    missing = [key for key in required if key not in payload]
    if missing:
        raise ArgsError(f"{kind} payload lacks {', '.join(missing)}")
    return {key: payload[key] for key in required}


def _utf8_or_marker(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return INVALID_UTF8_TEXT


def _msg_utf8(payload: Any, kind: str) -> dict[str, Any]:
    return {"msg": _utf8_or_marker(_bytes(payload, kind))}


def _payload_base64(payload: Any, kind: str) -> dict[str, Any]:
    return {"payload": base64.b64encode(_bytes(payload, kind)).decode("ascii")}


def _payload_byte_list(payload: Any, kind: str) -> dict[str, Any]:
    return {"payload": list(_bytes(payload, kind))}


def _msg(payload: Any, kind: str) -> dict[str, Any]:
    return {"msg": _text(payload, kind)}


def _payload(payload: Any, kind: str) -> dict[str, Any]:
    return {"payload": _text(payload, kind)}


def _row_change(payload: Any, kind: str) -> dict[str, Any]:
    return _record(payload, kind, _ROW_CHANGE_KEYS)


def _email(payload: Any, kind: str) -> dict[str, Any]:
    args = _record(payload, kind, ("raw_email", "parsed_email"))
    if payload.get("email_extra_args") is not None:
        args["email_extra_args"] = payload["email_extra_args"]
    return args


_PayloadFunction: TypeAlias = Callable[[Any, str], dict[str, Any]]

# kind -> (P_v1, P_v2)
_PAYLOAD_FUNCTIONS: Final[Mapping[str, tuple[_PayloadFunction, _PayloadFunction]]] = {
    "kafka": (_msg_utf8, _payload_base64),
    "nats": (_msg_utf8, _payload_base64),
    "mqtt": (_payload_byte_list, _payload_base64),
    "sqs": (_msg, _msg),
    "websocket": (_msg, _msg),
    "gcp": (_payload, _payload),
    "postgres": (_row_change, _row_change),
    "email": (_email, _email),
}

"""Reading a request body under a size limit, and parsing it by content type.

=====================================  ==================================================
content type                           args
=====================================  ==================================================
none, empty body                       ``{}``
none or ``application/json...``       a body starting with ``{``: the object itself; any
                                       other JSON value: ``{"body": value}``
``application/cloudevents+json``       the event's ``data`` (an object, else
                                       ``{"body": data}``); the envelope goes to
                                       ``WEBHOOK__METADATA__``
``text/plain``, ``*/xml``              ``{}``, the text as ``raw_string``
``application/x-www-form-urlencoded``  each field as a string
``multipart/form-data``                each text field as a string (files need object
                                       storage, which this gateway lacks: 400)
anything else                          415
=====================================  ==================================================

Invalid JSON or UTF-8 is a 400; an empty body with a JSON content type too, and text that would
be passed on holding a NUL (PostgreSQL cannot store one). JSON is read by `strict_json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.types import Receive

from gateway.http_routes import strict_json
from gateway.http_routes.routes.errors import RequestRefused

CLOUDEVENT_METADATA_KEY: Final = "WEBHOOK__METADATA__"
TEXT_TYPES: Final = ("text/plain", "application/xml", "text/xml")


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """The args a body gives, its text when it is to be passed on, and a CloudEvent envelope."""

    args: dict[str, Any]
    raw_string: str | None = None
    metadata: dict[str, Any] | None = None


async def read_body(receive: Receive, limit: int, declared_length: str | None) -> bytes:
    """The whole body; 413 as soon as it is known to exceed `limit` bytes."""
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestRefused(400, "the client closed the connection before sending the body")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(limit: int) -> RequestRefused:
    return RequestRefused(413, f"the request body is larger than the limit of {limit} bytes")


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, lowercase, without parameters ("" if none)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_body(content_type: str | None, body: bytes, *, keep_raw: bool) -> ParsedBody:
    """The args of `body`; the text is kept as `raw_string` when `keep_raw` (or for text types)."""
    media = media_type(content_type)
    if not media and not body:
        return ParsedBody({}, "" if keep_raw else None)
    if media in TEXT_TYPES:
        return ParsedBody({}, _storable_text(body))
    text = _text(body)
    raw = text if keep_raw else None
    if not media or media.startswith("application/json"):
        return ParsedBody(_json_args(text), raw)
    if media == "application/cloudevents+json":
        return _cloudevent(text, raw)
    if media == "application/cloudevents-batch+json":
        raise RequestRefused(400, "batches of CloudEvents are not supported")
    if media == "application/x-www-form-urlencoded":
        return ParsedBody(_form(text), raw)
    if media == "multipart/form-data":
        assert content_type is not None
        return ParsedBody(
            _multipart(content_type, body), _storable_text(body) if keep_raw else None
        )
    raise RequestRefused(415, f"unsupported content type {media!r}")


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestRefused(400, "the request body is not valid UTF-8") from None


def _storable_text(body: bytes) -> str:
    """Text passed on as it is: without NUL, which PostgreSQL cannot store (nor, alike, SQLite)."""
    text = _text(body)
    if "\x00" in text:
        raise RequestRefused(400, "the request body holds a NUL character, which cannot be stored")
    return text


def _json(text: str) -> Any:
    try:
        return strict_json.loads(text)
    except ValueError as exc:
        raise RequestRefused(400, f"invalid json: {exc}") from None


def _json_args(text: str) -> dict[str, Any]:
    value = _json(text)
    if text.startswith("{"):
        return dict(value)
    return {"body": value}


def _cloudevent(text: str, raw: str | None) -> ParsedBody:
    envelope = _json(text)
    if not isinstance(envelope, dict):
        raise RequestRefused(400, "a CloudEvent must be a JSON object")
    data = envelope.pop("data", None)
    args = dict(data) if isinstance(data, Mapping) else {"body": data}
    return ParsedBody(args, raw, envelope)


def _form(text: str) -> dict[str, str]:
    fields = dict(parse_qsl(text, keep_blank_values=True))
    if any("\x00" in name or "\x00" in value for name, value in fields.items()):
        raise RequestRefused(400, "a form field holds a NUL character, which cannot be stored")
    return fields


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(header + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        raise RequestRefused(400, "invalid multipart/form-data body")
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise RequestRefused(400, "a multipart field has no name")
        if part.get_filename() is not None:
            raise RequestRefused(
                400, f"field {name!r} is a file: file uploads need object storage, not supported"
            )
        payload = part.get_payload(decode=True)
        fields[name] = _storable_text(payload if isinstance(payload, bytes) else b"")
    return fields

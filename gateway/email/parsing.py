"""The parsed email a job receives (`parsed_email` in its args), read from the raw message.

    {
      "headers": {"From": [{"address": "ann@x.org", "name": "Ann"}], "Subject": "Hi", ...},
      "message_id": "<id@x.org>",            or None
      "from": [{"address", "name"}], "to": [...], "cc": [...],
      "subject": "Hi",                       or None
      "date": "2026-01-05T10:00:00+01:00",   ISO 8601 (the header's text if it is no date), or None
      "text_body": "...", "html_body": "...",
      "attachments": [{"name", "content_type", "size", "content"}]
    }

Header values are decoded (RFC 2047). An address header is a list of ``{address, name}`` (name
None when absent); any other header is a string when it occurs once and a list of strings when it
repeats (``Received``). A body the message lacks is synthesized from the other one, as Windmill
does. Attachment ``content`` is base64 and ``size`` counts the decoded bytes; an attached message
(``message/rfc822``) is kept as its own RFC 822 bytes.

A malformed message still parses: a header that cannot be decoded keeps its raw text and a body
in an unknown charset is read as UTF-8 with replacement characters. Bodies end lines with ``\n``.
"""

from __future__ import annotations

import base64
import html
import re
from email import policy
from email.headerregistry import AddressHeader
from email.message import EmailMessage, Message
from email.parser import BytesParser
from html.parser import HTMLParser
from typing import Any, Final

_BLOCK_TAGS: Final = frozenset(
    {"br", "p", "div", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"}
)
_HIDDEN_TAGS: Final = frozenset({"script", "style", "head"})
_SPACES: Final = re.compile(r"[ \t\r\n\f]+")
_BLANK_LINES: Final = re.compile(r"\n{3,}")


def parse_email(raw: bytes) -> dict[str, Any]:
    """The `parsed_email` of the RFC 822 message `raw`."""
    message = BytesParser(EmailMessage, policy=policy.default).parsebytes(raw)
    text = _body(message, "plain")
    html_body = _body(message, "html")
    return {
        "headers": _headers(message),
        "message_id": _single(message, "Message-ID"),
        "from": _addresses(message, "From"),
        "to": _addresses(message, "To"),
        "cc": _addresses(message, "Cc"),
        "subject": _single(message, "Subject"),
        "date": _date(message),
        "text_body": text if text is not None else html_to_text(html_body or ""),
        "html_body": html_body if html_body is not None else text_to_html(text or ""),
        "attachments": [_attachment(part) for part in message.iter_attachments()],
    }


def html_to_text(markup: str) -> str:
    """The readable text of an HTML body: tags dropped, block elements on lines of their own."""
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    lines = "".join(extractor.chunks).split("\n")
    return _BLANK_LINES.sub("\n\n", "\n".join(line.strip() for line in lines)).strip()


def text_to_html(text: str) -> str:
    """An HTML body showing a plain-text one: escaped, with its line breaks kept."""
    return "<br>\n".join(html.escape(line) for line in text.splitlines())


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML document, outside scripts, styles and the head."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.chunks.append(_SPACES.sub(" ", data))


def _headers(message: EmailMessage) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    for name, raw in message.raw_items():
        value = _header_value(message, name, raw)
        earlier = headers.get(name)
        if earlier is None:
            headers[name] = value
        elif isinstance(value, list):
            headers[name] = [*earlier, *value] if isinstance(earlier, list) else value
        else:
            headers[name] = [*earlier, value] if isinstance(earlier, list) else [earlier, value]
    return headers


def _header_value(message: EmailMessage, name: str, raw: str) -> Any:
    """The decoded header: a list of addresses for an address header, else its text."""
    try:
        value = message.policy.header_fetch_parse(name, raw)
    except Exception:  # the parser's own errors on malformed input vary by header and version
        return raw
    if isinstance(value, AddressHeader):
        return [_address(address) for address in value.addresses]
    return str(value)


def _address(address: Any) -> dict[str, str | None]:
    return {"address": address.addr_spec, "name": address.display_name or None}


def _raw_values(message: EmailMessage, name: str) -> list[str]:
    wanted = name.lower()
    return [raw for key, raw in message.raw_items() if key.lower() == wanted]


def _addresses(message: EmailMessage, name: str) -> list[dict[str, str | None]]:
    found: list[dict[str, str | None]] = []
    for raw in _raw_values(message, name):
        value = _header_value(message, name, raw)
        if isinstance(value, list):
            found.extend(value)
    return found


def _single(message: EmailMessage, name: str) -> str | None:
    values = _raw_values(message, name)
    return str(_header_value(message, name, values[0])).strip() if values else None


def _date(message: EmailMessage) -> str | None:
    values = _raw_values(message, "Date")
    if not values:
        return None
    try:
        moment = getattr(message.policy.header_fetch_parse("Date", values[0]), "datetime", None)
    except Exception:  # the parser's own errors on malformed input vary by version
        moment = None
    return moment.isoformat() if moment is not None else values[0].strip()


def _body(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if not isinstance(part, EmailMessage):
        return None
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown or lying charset
        content = None
    if not isinstance(content, str):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    return content.replace("\r\n", "\n")


def _attachment(part: Message) -> dict[str, Any]:
    data = _attachment_bytes(part)
    return {
        "name": part.get_filename(),
        "content_type": part.get_content_type(),
        "size": len(data),
        "content": base64.b64encode(data).decode("ascii"),
    }


def _attachment_bytes(part: Message) -> bytes:
    if part.get_content_maintype() == "message":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return inner[0].as_bytes()
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else part.as_bytes()

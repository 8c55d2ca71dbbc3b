"""The parsed email a job receives: headers, addresses, bodies and attachments."""

from __future__ import annotations

import base64
from email.message import EmailMessage

from gateway.email.parsing import html_to_text, parse_email, text_to_html

PNG = bytes(range(256)) * 3


def order_email() -> EmailMessage:
    """A message with text and HTML bodies, a JSON and a binary attachment, a unicode subject."""
    message = EmailMessage()
    message["From"] = "Zoë Martin <zoe@shop.example>"
    message["To"] = "orders@gw.example, Bob <bob@gw.example>"
    message["Cc"] = "audit@gw.example"
    message["Subject"] = "Commande reçue ✓ n°42"
    message["Date"] = "Mon, 05 Jan 2026 10:00:00 +0100"
    message["Message-ID"] = "<order-42@shop.example>"
    message.set_content("Merci ✓\nÀ bientôt\n")
    message.add_alternative("<p>Merci <b>✓</b></p>", subtype="html")
    message.add_attachment(
        b'{"order": 42}', maintype="application", subtype="json", filename="order.json"
    )
    message.add_attachment(PNG, maintype="image", subtype="png", filename="reçu.png")
    return message


def test_headers_and_addresses_are_decoded() -> None:
    parsed = parse_email(order_email().as_bytes())

    assert parsed["subject"] == "Commande reçue ✓ n°42"
    assert parsed["message_id"] == "<order-42@shop.example>"
    assert parsed["from"] == [{"address": "zoe@shop.example", "name": "Zoë Martin"}]
    assert parsed["to"] == [
        {"address": "orders@gw.example", "name": None},
        {"address": "bob@gw.example", "name": "Bob"},
    ]
    assert parsed["cc"] == [{"address": "audit@gw.example", "name": None}]
    assert parsed["headers"]["Subject"] == "Commande reçue ✓ n°42"
    assert parsed["headers"]["From"] == parsed["from"]


def test_the_date_is_iso_8601() -> None:
    assert parse_email(order_email().as_bytes())["date"] == "2026-01-05T10:00:00+01:00"


def test_a_date_that_is_no_date_keeps_its_text() -> None:
    raw = b"Date: next tuesday\r\nSubject: x\r\n\r\nbody\r\n"

    assert parse_email(raw)["date"] == "next tuesday"


def test_both_bodies_are_read() -> None:
    parsed = parse_email(order_email().as_bytes())

    assert parsed["text_body"] == "Merci ✓\nÀ bientôt\n"
    assert parsed["html_body"] == "<p>Merci <b>✓</b></p>\n"


def test_attachments_have_name_type_size_and_base64_content() -> None:
    attachments = parse_email(order_email().as_bytes())["attachments"]

    assert [(a["name"], a["content_type"], a["size"]) for a in attachments] == [
        ("order.json", "application/json", 13),
        ("reçu.png", "image/png", len(PNG)),
    ]
    assert base64.b64decode(attachments[0]["content"]) == b'{"order": 42}'
    assert base64.b64decode(attachments[1]["content"]) == PNG


def test_an_attached_message_is_kept_as_its_own_bytes() -> None:
    inner = EmailMessage()
    inner["Subject"] = "forwarded"
    inner.set_content("inside")
    outer = EmailMessage()
    outer.set_content("see attached")
    outer.add_attachment(inner)

    [attached] = parse_email(outer.as_bytes())["attachments"]

    assert attached["content_type"] == "message/rfc822"
    assert b"Subject: forwarded" in base64.b64decode(attached["content"])


def test_a_missing_html_body_is_made_from_the_text_one() -> None:
    message = EmailMessage()
    message.set_content("a < b\nsecond line")

    parsed = parse_email(message.as_bytes())

    assert parsed["html_body"] == "a &lt; b<br>\nsecond line"


def test_a_missing_text_body_is_made_from_the_html_one() -> None:
    message = EmailMessage()
    message.set_content(
        "<html><head><title>t</title><style>p {}</style></head>"
        "<body><p>Hello &amp; <i>welcome</i></p><div>bye</div></body></html>",
        subtype="html",
    )

    assert parse_email(message.as_bytes())["text_body"] == "Hello & welcome\n\nbye"


def test_repeated_headers_become_a_list() -> None:
    raw = b"Received: from a\r\nReceived: from b\r\nSubject: x\r\n\r\nbody\r\n"

    assert parse_email(raw)["headers"]["Received"] == ["from a", "from b"]


def test_a_body_in_an_unknown_charset_is_read_as_utf8() -> None:
    raw = b"Subject: x\r\nContent-Type: text/plain; charset=klingon\r\n\r\ncaf\xc3\xa9 \xff\r\n"

    assert parse_email(raw)["text_body"] == "café \ufffd\n"


def test_a_message_without_headers_still_parses() -> None:
    parsed = parse_email(b"just some text")

    assert (parsed["subject"], parsed["from"], parsed["message_id"]) == (None, [], None)
    assert parsed["text_body"] == "just some text"


def test_html_and_text_conversions_are_plain() -> None:
    assert html_to_text("<p>a</p><br><p>b</p>") == "a\n\nb"
    assert text_to_html("<x>") == "&lt;x&gt;"

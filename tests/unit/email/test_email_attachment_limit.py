"""A message with an attachment over the limit is kept for the quarantine, with the reason."""

from __future__ import annotations

from email.message import EmailMessage

from gateway.email.intake import ReceivedMessage


def message_with_attachment(size: int) -> bytes:
    message = EmailMessage()
    message["From"] = "ann@example.org"
    message["To"] = "orders@gateway.example"
    message["Subject"] = "invoice"
    message.set_content("see attached")
    message.add_attachment(b"x" * size, maintype="application", subtype="pdf", filename="big.pdf")
    return message.as_bytes()


def test_an_attachment_over_the_limit_leaves_the_message_unparsed_with_the_reason() -> None:
    received = ReceivedMessage.read(message_with_attachment(2000), "ann@example.org", 1000)

    assert received.parsed is None
    assert received.problem == (
        "attachment 'big.pdf' is 2000 bytes, over the limit of 1000 bytes "
        "(GATEWAY_EMAIL_MAX_ATTACHMENT_BYTES)"
    )


def test_an_attachment_within_the_limit_is_parsed() -> None:
    received = ReceivedMessage.read(message_with_attachment(1000), "ann@example.org", 1000)

    assert received.parsed is not None
    assert [a["size"] for a in received.parsed["attachments"]] == [1000]

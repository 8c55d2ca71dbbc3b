"""Fuzzing email intake: any bytes an SMTP client sends as DATA become an event.

A message that parses becomes a job with storable args, or `ArgsError`; one that does not keeps
`parsed` None and the reason. `EmailIntake` quarantines both, under a storable dedup key.
Reading a message never raises.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.email.addresses import EmailTarget
from gateway.email.intake import ReceivedMessage, to_event
from gateway.listeners.lease import TriggerRef
from gateway.scripts import Script
from gateway.store.storable import holds_unstorable_text
from gateway.triggers.args import ArgsError, RunnableShape
from gateway.triggers.runnables import Runnable, TriggerTarget
from tests.unit.triggers.jobs import job_of

TARGET = EmailTarget(
    recipient="orders@gw.example",
    trigger=TriggerRef("email", "ops", "u/alice/orders"),
    row={"mode": "enabled"},
    extra_args={"k": "v"},
)
SCRIPT = Script("ops", "f/t/s", 1, "", "python3", {}, "a", datetime(2026, 1, 1, tzinfo=UTC))
HEADER_NAMES = (
    "From", "To", "Cc", "Subject", "Date", "Message-ID", "Content-Type",
    "Content-Transfer-Encoding", "Content-Disposition", "MIME-Version", "Received", "X-Any",
)  # fmt: skip
HEADER_VALUES = (
    "Ann <ann@x.org>", "<@>", "a@b, , <c@d>", '"unclosed <x@y', "=?utf-8?b?w6k=?=",
    "=?unknown?q?caf=E9?=", "=?utf-8?q?broken", "Mon, 99 Foo 2026 25:61:00 +9999",
    "text/plain; charset=utf-8", "text/html; charset=x-unknown", "multipart/mixed; boundary=b",
    "multipart/alternative", "message/rfc822", "base64", "quoted-printable", "x-uuencode",
    'attachment; filename="a.bin"', "attachment; filename*=utf-8''%FF%FE", "<a\x00b@x>",
)  # fmt: skip

header_lines = st.tuples(
    st.sampled_from(HEADER_NAMES) | st.text(min_size=1, max_size=12),
    st.sampled_from(HEADER_VALUES) | st.text(max_size=40),
).map(lambda pair: f"{pair[0]}: {pair[1]}")
parts = st.lists(st.text(max_size=60), max_size=3).map(
    lambda bodies: (
        "".join(f"--b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n" for body in bodies)
        + "--b--\r\n"
    )
)
messages = st.builds(
    lambda headers, body: ("\r\n".join(headers) + "\r\n\r\n" + body).encode("utf-8", "replace"),
    st.lists(header_lines, max_size=8),
    st.text(max_size=200) | parts,
)


@settings(max_examples=80, deadline=None)
@given(messages | st.binary(max_size=300), st.none() | st.text(max_size=20))
def test_any_message_becomes_an_event_with_json_args_or_a_reason(
    raw: bytes, sender: str | None
) -> None:
    message = ReceivedMessage.read(raw, sender)

    event = to_event(message, TARGET)

    assert event.raw == raw
    assert not holds_unstorable_text(event.dedup_key)
    if message.parsed is None:
        assert message.problem
        return
    target = TriggerTarget(TARGET.trigger, "f/t/s", False, "u/a", "a@x", None, None, False)
    for shape in (RunnableShape(), RunnableShape(has_preprocessor=True)):
        try:
            job = job_of(target, event, Runnable(SCRIPT, shape))
        except ArgsError:
            continue  # quarantined
        json.dumps(job.args, allow_nan=False)
        assert not holds_unstorable_text(job.args)

"""From a received message to committed jobs: `EmailIntake`, what the SMTP server calls.

Email needs no lease: every instance serves every address. The SMTP conversation maps onto it:

* RCPT: `check_recipient` raises `RecipientRefused` (the server answers 550) when the address names
  no trigger, or a disabled one;
* DATA: `deliver` makes, in one transaction, one job per recipient, built as a listener's jobs are
  (`prepare_jobs`: ``trigger_kind`` email, ``trigger`` the trigger's path, its retry and error
  handler, parked when the trigger is suspended). The dedup key is the recipient and the
  Message-ID (the SHA-256 of the message when it has none), so a sender that retries after losing
  the reply gets the job it made already. A message that cannot become a job (a flow target, a
  missing script, a message that cannot be parsed) goes to the quarantine with its raw bytes.

The server answers 250 only once `deliver` returned, that is once the transaction committed; any
error before means 451 and the sender tries again later.

Event info (``I`` of the arg shapes): ``recipient`` (the address, lowercased) and ``sender`` (the
envelope sender, None for a bounce).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

from gateway.email.addresses import AddressBook, EmailTarget
from gateway.email.parsing import parse_email
from gateway.errors import NotFound
from gateway.jobs.enqueue import enqueue
from gateway.jobs.model import NewJob
from gateway.store import Store, Transaction
from gateway.triggers.event import Event
from gateway.triggers.quarantine import quarantine_event
from gateway.triggers.runnables import Rejected, RunnableShapes, prepare_jobs

logger = logging.getLogger(__name__)

_MAX_READABLE_ID: Final = 200
"""A longer Message-ID is hashed in the dedup key, which has a bounded length."""


class RecipientRefused(NotFound):
    """No email trigger takes mail at this address."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """The job a recipient's copy of a message became; None when it was quarantined."""

    recipient: str
    job_id: UUID | None


class EmailIntake:
    """Turns received messages into jobs of the email triggers they are addressed to."""

    def __init__(
        self,
        store: Store,
        book: AddressBook,
        shapes: RunnableShapes | None = None,
        max_attachment_bytes: int | None = None,
    ) -> None:
        self._store = store
        self._book = book
        self._shapes = shapes if shapes is not None else RunnableShapes()
        self._max_attachment_bytes = max_attachment_bytes

    async def check_recipient(self, address: str) -> EmailTarget:
        """The target of `address`; RecipientRefused when mail to it is not taken.

        An address the address book does not know, or whose trigger is gone, makes it read the
        addresses again once before the address is refused.
        """
        target = await self._target(address)
        if target is None:
            await self._book.refresh()
            target = await self._target(address)
        if target is None:
            raise RecipientRefused(f"no email trigger at {address}")
        if not target.accepts_mail:
            raise RecipientRefused(f"the email trigger at {address} is disabled")
        return target

    async def _target(self, address: str) -> EmailTarget | None:
        addressee = await self._book.addressee(address)
        if addressee is None:
            return None
        async with self._store.transaction() as tx:
            return await addressee.load(tx)

    async def deliver(
        self, raw: bytes, sender: str | None, recipients: Sequence[str]
    ) -> list[Delivered]:
        """Commit one job per recipient of the message `raw`; their ids once committed."""
        message = await asyncio.to_thread(
            ReceivedMessage.read, raw, sender, self._max_attachment_bytes
        )
        unique = list(dict.fromkeys(recipients))
        addressees = [await self._book.addressee(recipient) for recipient in unique]
        delivered: list[Delivered] = []
        async with self._store.transaction() as tx:
            for recipient, addressee in zip(unique, addressees, strict=True):
                target = None if addressee is None else await addressee.load(tx)
                if target is None or not target.accepts_mail:
                    # Accepted at RCPT, deleted or disabled since: nobody takes this copy.
                    logger.warning(
                        "email to %s dropped: its trigger was deleted or disabled meanwhile",
                        recipient,
                        extra={"action": "email_dropped", "kind": "email"},
                    )
                    continue
                delivered.append(await self._enqueue(tx, target, message))
        for outcome in delivered:
            logger.info(
                "email to %s -> %s",
                outcome.recipient,
                f"job {outcome.job_id}" if outcome.job_id else "quarantined",
                extra={"action": "email_delivered", "kind": "email"},
            )
        return delivered

    async def _enqueue(
        self, tx: Transaction, target: EmailTarget, message: ReceivedMessage
    ) -> Delivered:
        event = to_event(message, target)
        if message.parsed is None:
            rejected = [Rejected(event, message.problem)]
            jobs: tuple[NewJob, ...] = ()
        else:
            prepared = await prepare_jobs(tx, target.trigger, target.row, [event], self._shapes)
            rejected, jobs = list(prepared.rejected), prepared.jobs
        for reject in rejected:
            await quarantine_event(tx, target.trigger, reject.event, reject.reason)
            logger.warning(
                "email to %s quarantined: %s",
                target.recipient,
                reject.reason,
                extra={
                    "action": "event_quarantined",
                    "kind": "email",
                    "trigger": str(target.trigger),
                },
            )
        enqueued = await enqueue(tx, jobs)
        return Delivered(target.recipient, enqueued[0].job_id if enqueued else None)


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One received message, read once for all of its recipients."""

    raw: bytes
    text: str
    parsed: Mapping[str, Any] | None
    problem: str
    sender: str | None

    @classmethod
    def read(
        cls, raw: bytes, sender: str | None, max_attachment_bytes: int | None = None
    ) -> ReceivedMessage:
        """Parse `raw`; a message that cannot be parsed, or has an attachment over
        `max_attachment_bytes`, keeps `parsed` None and says why."""
        try:
            parsed: dict[str, Any] | None = parse_email(raw)
            problem = ""
        except Exception as exc:  # a bad message is quarantined, never refused or lost
            parsed, problem = None, f"the message cannot be parsed: {_describe(exc)}"
        if parsed is not None and max_attachment_bytes is not None:
            oversized = [a for a in parsed["attachments"] if a["size"] > max_attachment_bytes]
            if oversized:
                name, size = oversized[0]["name"], oversized[0]["size"]
                problem = (
                    f"attachment {name!r} is {size} bytes, over the limit of "
                    f"{max_attachment_bytes} bytes (GATEWAY_EMAIL_MAX_ATTACHMENT_BYTES)"
                )
                parsed = None
        return cls(raw, raw.decode("utf-8", errors="replace"), parsed, problem, sender or None)

    @property
    def dedup_id(self) -> str:
        """The Message-ID (hashed when long or holding a NUL), or the SHA-256 of the message when
        it has none."""
        message_id = (self.parsed or {}).get("message_id")
        if message_id and len(message_id) <= _MAX_READABLE_ID and "\x00" not in message_id:
            return str(message_id)
        hashed = hashlib.sha256(message_id.encode() if message_id else self.raw)
        return f"sha256:{hashed.hexdigest()}"


def to_event(message: ReceivedMessage, target: EmailTarget) -> Event:
    """The event of one recipient's copy of a message."""
    payload: dict[str, Any] = {"raw_email": message.text, "parsed_email": message.parsed}
    if target.extra_args:
        payload["email_extra_args"] = dict(target.extra_args)
    return Event(
        kind="email",
        payload=payload,
        info={"recipient": target.recipient, "sender": message.sender},
        dedup_key=f"{target.recipient}/{message.dedup_id}",
        raw=message.raw,
    )


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

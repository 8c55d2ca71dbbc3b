"""The SMTP server of an instance: aiosmtpd's protocol, served on the gateway's own event loop.

aiosmtpd's `Controller` runs a second event loop in a thread; the gateway instead serves aiosmtpd's
`SMTP` protocol from `loop.create_server`, so the handler awaits the store on the loop that owns it.

Replies (`EmailIntake` does the work):

=========  ==================================================================================
RCPT       250 when the address takes mail, 550 when it names no trigger or a disabled one,
           451 when the store cannot be read
MAIL/DATA  552 over `max_message_bytes` (announced with SIZE and enforced by aiosmtpd)
DATA       250 once the jobs are committed, 451 when they could not be: the sender retries and
           the dedup key turns the retry into the job made already; 550 when every recipient's
           trigger was deleted or disabled since RCPT
=========  ==================================================================================

STARTTLS is offered when a certificate and its key are given. `stop` stops accepting connections,
lets the commits in progress finish for up to `grace_s`, then closes the connections still open.
A commit outlives its client: a sender that hangs up during DATA retries later, and the retry
finds the job.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import weakref
from pathlib import Path
from typing import Any, Final

from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.email.intake import EmailIntake, RecipientRefused
from gateway.errors import ConfigError

logger = logging.getLogger(__name__)

TRY_AGAIN_LATER: Final = "451 4.3.0 Temporary failure, the message was not stored: try again later"
IDENT: Final = "gateway"


class _Handler:
    """aiosmtpd's hooks: RCPT asks the intake about the address, DATA commits the jobs."""

    def __init__(self, intake: EmailIntake) -> None:
        self._intake = intake
        self.deliveries: set[asyncio.Task[str]] = set()

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Accept the recipient when an email trigger takes mail at its address."""
        try:
            await self._intake.check_recipient(address)
        except RecipientRefused as exc:
            return f"550 5.1.1 {exc}"
        except Exception as exc:
            logger.warning(
                "cannot look up the email address %s, answered 451: %s",
                address,
                _describe(exc),
                extra={"action": "email_lookup_failed", "kind": "email"},
            )
            return TRY_AGAIN_LATER
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Commit the message's jobs; the reply says whether they are stored."""
        delivery = asyncio.create_task(self._deliver(envelope), name="smtp:deliver")
        self.deliveries.add(delivery)
        delivery.add_done_callback(self.deliveries.discard)
        # Shielded: a client that hangs up does not roll back a commit in progress.
        return await asyncio.shield(delivery)

    async def _deliver(self, envelope: Envelope) -> str:
        recipients = list(envelope.rcpt_tos)
        try:
            delivered = await self._intake.deliver(
                envelope.original_content or b"", envelope.mail_from, recipients
            )
        except Exception as exc:
            logger.warning(
                "cannot store the email to %s, answered 451: %s",
                ", ".join(recipients),
                _describe(exc),
                extra={"action": "email_store_failed", "kind": "email"},
            )
            return TRY_AGAIN_LATER
        if not delivered:
            return "550 5.1.1 No recipient takes mail any more: their triggers changed"
        return f"250 2.0.0 OK: stored for {len(delivered)} recipient(s)"


class _Session(SMTP):
    """One SMTP connection, which says when it has ended."""

    def __init__(self, handler: _Handler, **options: Any) -> None:
        super().__init__(handler, **options)
        self.ended = asyncio.Event()

    def connection_lost(self, error: Exception | None) -> None:
        """Let `SmtpServer.stop` know the connection is gone."""
        super().connection_lost(error)
        self.ended.set()


class SmtpServer:
    """The instance's SMTP listener; every instance serves every email address."""

    def __init__(
        self,
        intake: EmailIntake,
        *,
        host: str,
        port: int,
        max_message_bytes: int,
        hostname: str | None = None,
        tls_cert_file: Path | None = None,
        tls_key_file: Path | None = None,
    ) -> None:
        if (tls_cert_file is None) != (tls_key_file is None):
            raise ConfigError("STARTTLS needs both a certificate file and its key file")
        self._handler = _Handler(intake)
        self._host = host
        self._port = port
        self._max_message_bytes = max_message_bytes
        self._hostname = hostname
        self._tls_files = (tls_cert_file, tls_key_file)
        self._sessions: weakref.WeakSet[_Session] = weakref.WeakSet()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen on `host:port`; ConfigError when the address or the certificate is unusable."""
        if self._server is not None:
            raise RuntimeError("the SMTP server was already started")
        loop = asyncio.get_running_loop()
        cert, key = self._tls_files
        tls = None if cert is None or key is None else await asyncio.to_thread(_tls, cert, key)
        # aiosmtpd would look the name up on every connection, blocking the loop.
        hostname = self._hostname or await asyncio.to_thread(socket.getfqdn)

        def session() -> _Session:
            opened = _Session(
                self._handler,
                data_size_limit=self._max_message_bytes,
                enable_SMTPUTF8=True,
                hostname=hostname,
                ident=IDENT,
                tls_context=tls,
                loop=loop,
            )
            self._sessions.add(opened)
            return opened

        try:
            self._server = await loop.create_server(session, self._host, self._port)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve SMTP on {self._host}:{self._port}: {exc.strerror or exc}"
            ) from exc
        logger.info(
            "SMTP server listening on %s:%d%s",
            self._host,
            self.port,
            " with STARTTLS" if tls else "",
            extra={"action": "smtp_started", "kind": "email"},
        )

    @property
    def port(self) -> int:
        """The port actually bound (useful when the setting is 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the SMTP server is not listening")
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self, grace_s: float) -> None:
        """Stop accepting, let commits in progress finish for `grace_s`, close connections."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        pending = set(self._handler.deliveries)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=grace_s)
        for delivery in pending:
            delivery.cancel()
        if pending:
            await asyncio.wait(pending)
        closing: list[_Session] = []
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
                closing.append(session)
        await asyncio.gather(*(session.ended.wait() for session in closing))
        # One more turn of the loop lets each session's task end on its cancellation.
        await asyncio.sleep(0)
        await server.wait_closed()
        logger.info("SMTP server stopped", extra={"action": "smtp_stopped", "kind": "email"})


def _tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the SMTP certificate {cert} and key {key}: {exc}") from exc
    return context


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

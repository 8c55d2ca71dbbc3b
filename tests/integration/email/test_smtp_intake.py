"""Email sent with smtplib to the gateway's SMTP server: jobs committed before 250, 550 for
addresses nobody serves, 552 over the size limit, 451 while the store is down, one job per
Message-ID and address, default addresses of scripts, STARTTLS."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from gateway.email.addresses import AddressBook, default_address
from gateway.email.intake import EmailIntake
from gateway.email.server import SmtpServer
from gateway.errors import DatabaseUnavailable
from gateway.executor.worker import Executor
from gateway.http_routes.api.tokens import issue_token
from gateway.jobs.read import JobFilter, list_jobs
from gateway.listeners.lease import TriggerRef
from gateway.runtime import Gateway
from gateway.settings import Settings
from gateway.store import Store, Transaction
from gateway.store.notify import Broadcaster
from gateway.store.trigger_tables import COLUMN_DEFAULTS, TRIGGER_TABLES
from gateway.triggers.quarantine import list_quarantined_events
from gateway.workspaces import ensure_workspace

from ...conftest import service_missing
from ..support import OWNER, WS, add_scripts, completed
from ..triggers.support import unique_path

pytestmark = pytest.mark.integration

DOMAIN = "gw.example"
SENDER = "zoe@shop.example"
MAX_BYTES = 64 * 1024
WAIT_S = 20.0
PNG = bytes(range(256)) * 4
READER = (
    "def main(raw_email: str, parsed_email: dict, email_extra_args: dict = None):\n"
    "    return {\n"
    "        'subject': parsed_email['subject'],\n"
    "        'from': parsed_email['from'],\n"
    "        'text': parsed_email['text_body'],\n"
    "        'attachments': [[a['name'], a['content_type'], a['size']]\n"
    "                        for a in parsed_email['attachments']],\n"
    "        'extra': email_extra_args,\n"
    "    }\n"
)


async def add_email_trigger(
    store: Store, local_part: str, *, script: str = "reader", mode: str = "enabled", **columns: Any
) -> TriggerRef:
    """An email trigger of the test user at `local_part`, as the API would write it."""
    trigger = TriggerRef("email", WS, unique_path(local_part))
    values = {
        **{
            column: COLUMN_DEFAULTS.get(column)
            for column in TRIGGER_TABLES["email"].writable_columns
        },
        "path": trigger.path,
        "local_part": local_part,
        "script_path": f"f/t/{script}",
        "is_flow": False,
        "workspace_id": WS,
        "edited_by": OWNER.username,
        "email": OWNER.email,
        "permissioned_as": OWNER.permissioned_as,
        "mode": mode,
        **columns,
    }
    values.pop("edited_at")
    async with store.transaction() as tx:
        await ensure_workspace(tx, WS, OWNER)
        await tx.execute("upsert_email_trigger", **values)
    return trigger


def order_email(message_id: str = "<order-42@shop.example>", **headers: str) -> EmailMessage:
    """A message with text and HTML bodies, two attachments and a unicode subject."""
    message = EmailMessage()
    message["From"] = f"Zoë Martin <{SENDER}>"
    message["To"] = f"orders@{DOMAIN}"
    message["Subject"] = "Commande reçue ✓ n°42"
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name] = value
    message.set_content("Merci ✓\n")
    message.add_alternative("<p>Merci <b>✓</b></p>", subtype="html")
    message.add_attachment(
        b'{"order": 42}', maintype="application", subtype="json", filename="order.json"
    )
    message.add_attachment(PNG, maintype="image", subtype="png", filename="reçu.png")
    return message


@asynccontextmanager
async def smtp_server(store: Store, **options: Any) -> AsyncIterator[SmtpServer]:
    """The gateway's SMTP server on a free port, over `store`."""
    options = {"max_message_bytes": MAX_BYTES, "hostname": "mx.gw.example", **options}
    server = SmtpServer(
        EmailIntake(store, AddressBook(store, DOMAIN)), host="127.0.0.1", port=0, **options
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace_s=2.0)


async def send(
    server: SmtpServer, message: EmailMessage, recipients: Sequence[str]
) -> dict[str, tuple[int, bytes]]:
    """Send `message` with smtplib; the recipients refused (all refused raises)."""

    def deliver() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=WAIT_S) as client:
            return client.send_message(message, from_addr=SENDER, to_addrs=list(recipients))

    return await asyncio.to_thread(deliver)


async def email_jobs(store: Store) -> list[dict[str, Any]]:
    """Every job email made in the test workspace."""
    return await list_jobs(store, WS, JobFilter(trigger_kind="email", per_page=100))


async def test_a_message_with_attachments_becomes_a_job_committed_before_the_reply(
    store: Store, settings: Settings
) -> None:
    await add_scripts(store, reader=READER)
    trigger = await add_email_trigger(store, "orders")

    async with smtp_server(store) as server:
        refused = await send(server, order_email(), [f"orders+source=shop&lot=7@{DOMAIN}"])
        [job] = await email_jobs(store)  # listed at once: the reply came after the commit
    executor = Executor(store, settings)
    await executor.start()
    try:
        result = (await completed(store, UUID(job["id"])))["result"]
    finally:
        await executor.stop(grace_s=1.0)

    assert refused == {}
    assert (job["trigger"], job["trigger_kind"], job["created_by"], job["permissioned_as"]) == (
        trigger.path,
        "email",
        f"email-{trigger.path}",
        OWNER.permissioned_as,
    )
    assert result == {
        "subject": "Commande reçue ✓ n°42",
        "from": [{"address": SENDER, "name": "Zoë Martin"}],
        "text": "Merci ✓\n",
        "attachments": [
            ["order.json", "application/json", 13],
            ["reçu.png", "image/png", len(PNG)],
        ],
        "extra": {"source": "shop", "lot": "7"},
    }


async def test_unknown_addresses_are_refused_with_550_and_the_others_get_the_message(
    store: Store,
) -> None:
    await add_scripts(store, reader=READER)
    await add_email_trigger(store, "orders")

    async with smtp_server(store) as server:
        refused = await send(
            server,
            order_email(),
            [f"orders@{DOMAIN}", f"nobody@{DOMAIN}", "orders@elsewhere.example"],
        )
        with pytest.raises(smtplib.SMTPRecipientsRefused) as all_refused:
            await send(server, order_email("<other@shop.example>"), [f"nobody@{DOMAIN}"])

    assert {address: code for address, (code, _) in refused.items()} == {
        f"nobody@{DOMAIN}": 550,
        "orders@elsewhere.example": 550,
    }
    assert all_refused.value.recipients[f"nobody@{DOMAIN}"][0] == 550
    assert len(await email_jobs(store)) == 1


async def test_a_disabled_trigger_refuses_mail_and_a_suspended_one_parks_its_jobs(
    store: Store,
) -> None:
    await add_scripts(store, reader=READER)
    await add_email_trigger(store, "closed", mode="disabled")
    parked = await add_email_trigger(store, "paused", mode="suspended")

    async with smtp_server(store) as server:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as disabled:
            await send(server, order_email(), [f"closed@{DOMAIN}"])
        await send(server, order_email(), [f"paused@{DOMAIN}"])

    [job] = await email_jobs(store)
    assert disabled.value.recipients[f"closed@{DOMAIN}"][0] == 550
    assert (job["trigger"], job["job_kind"]) == (parked.path, "unassigned_script")


async def test_an_oversized_message_is_refused_with_552(store: Store) -> None:
    await add_scripts(store, reader=READER)
    await add_email_trigger(store, "orders")
    message = order_email()
    message.add_attachment(b"x" * MAX_BYTES, maintype="application", subtype="octet-stream")

    def without_size_announced() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=WAIT_S) as client:
            client.ehlo()
            client.mail(SENDER)
            client.rcpt(f"orders@{DOMAIN}")
            return client.data(message.as_bytes(policy=policy.SMTP))

    async with smtp_server(store) as server:
        with pytest.raises(smtplib.SMTPSenderRefused) as announced:
            await send(server, message, [f"orders@{DOMAIN}"])
        code, _ = await asyncio.to_thread(without_size_announced)

    assert (announced.value.smtp_code, code) == (552, 552)
    assert await email_jobs(store) == []


async def test_the_same_message_id_twice_makes_one_job_per_address(store: Store) -> None:
    await add_scripts(store, reader=READER)
    orders = await add_email_trigger(store, "orders")
    audit = await add_email_trigger(store, "audit")

    async with smtp_server(store) as server:
        await send(server, order_email(), [f"orders@{DOMAIN}"])
        await send(server, order_email(), [f"Orders@{DOMAIN}", f"audit@{DOMAIN}"])
        await send(server, order_email("<order-43@shop.example>"), [f"orders@{DOMAIN}"])

    jobs = await email_jobs(store)
    assert sorted(job["trigger"] for job in jobs) == sorted([orders.path, orders.path, audit.path])


async def test_a_missing_flow_target_is_quarantined_with_the_message(store: Store) -> None:
    trigger = await add_email_trigger(store, "flows", script="some_flow", is_flow=True)

    async with smtp_server(store) as server:
        refused = await send(server, order_email(), [f"flows@{DOMAIN}"])

    [kept] = await list_quarantined_events(store, WS, trigger_kind="email")
    assert refused == {}
    assert kept.trigger_path == trigger.path
    assert b"Commande" in kept.raw or b"Subject:" in kept.raw
    assert "flow" in kept.error
    assert await email_jobs(store) == []


class FlakyStore:
    """A store whose transactions fail while `down` is set, as when the database is gone."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.down = False
        self.dialect = inner.dialect
        self.notifications: Broadcaster = inner.notifications

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        if self.down:
            raise DatabaseUnavailable("cannot connect to the database: connection refused")
        return self.inner.transaction()

    async def close(self) -> None:
        await self.inner.close()


async def test_an_unavailable_store_answers_451_and_the_retry_is_stored(store: Store) -> None:
    await add_scripts(store, reader=READER)
    await add_email_trigger(store, "orders")
    flaky = FlakyStore(store)
    client = smtplib.SMTP(timeout=WAIT_S)

    async with smtp_server(flaky) as server:
        await asyncio.to_thread(client.connect, "127.0.0.1", server.port)
        try:
            await asyncio.to_thread(client.ehlo)
            await asyncio.to_thread(client.mail, SENDER)
            flaky.down = True
            at_rcpt = await asyncio.to_thread(client.rcpt, f"orders@{DOMAIN}")
            flaky.down = False
            await asyncio.to_thread(client.rcpt, f"orders@{DOMAIN}")
            flaky.down = True
            raw = order_email().as_bytes(policy=policy.SMTP)
            at_data = await asyncio.to_thread(client.data, raw)
        finally:
            flaky.down = False
            await asyncio.to_thread(client.quit)
        jobs_while_down = await email_jobs(store)
        await send(server, order_email(), [f"orders@{DOMAIN}"])

    assert (at_rcpt[0], at_data[0]) == (451, 451)
    assert jobs_while_down == []
    assert len(await email_jobs(store)) == 1


async def test_a_trigger_deleted_between_rcpt_and_data_refuses_the_message(store: Store) -> None:
    await add_scripts(store, reader=READER)
    trigger = await add_email_trigger(store, "orders")
    client = smtplib.SMTP(timeout=WAIT_S)

    async with smtp_server(store) as server:
        await asyncio.to_thread(client.connect, "127.0.0.1", server.port)
        try:
            await asyncio.to_thread(client.ehlo)
            await asyncio.to_thread(client.mail, SENDER)
            accepted = await asyncio.to_thread(client.rcpt, f"orders@{DOMAIN}")
            async with store.transaction() as tx:
                await tx.execute("delete_email_trigger", workspace_id=WS, path=trigger.path)
            raw = order_email().as_bytes(policy=policy.SMTP)
            at_data = await asyncio.to_thread(client.data, raw)
        finally:
            await asyncio.to_thread(client.quit)

    assert (accepted[0], at_data[0]) == (250, 550)
    assert await email_jobs(store) == []


async def test_a_default_address_runs_the_script_as_the_tokens_owner(store: Store) -> None:
    await add_scripts(store, reader=READER)
    async with store.transaction() as tx:
        allowed = await issue_token(
            tx, OWNER, WS, label="email-reader", scopes=["run:script/f/t/reader"]
        )
        other = await issue_token(tx, OWNER, WS, scopes=["run:script/f/t/other"])

    async with smtp_server(store) as server:
        refused = await send(
            server,
            order_email(),
            [
                default_address(WS, "f/t/reader", allowed, DOMAIN),
                default_address(WS, "f/t/reader", other, DOMAIN),
            ],
        )

    [job] = await email_jobs(store)
    assert [code for code, _ in refused.values()] == [550]
    assert (job["script_path"], job["trigger"], job["permissioned_as"]) == (
        "f/t/reader",
        "f/t/reader",
        OWNER.permissioned_as,
    )


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for mx.gw.example, made with openssl."""
    cert, key = folder / "smtp.crt", folder / "smtp.key"
    try:
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-subj", "/CN=mx.gw.example", "-keyout", str(key), "-out", str(cert),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        service_missing("openssl", str(exc))
    return cert, key


async def test_starttls_is_offered_with_a_certificate(store: Store, tmp_path: Path) -> None:
    await add_scripts(store, reader=READER)
    await add_email_trigger(store, "orders")
    cert, key = self_signed(tmp_path)
    trusted = ssl.create_default_context(cafile=str(cert))
    trusted.check_hostname = False

    async with smtp_server(store, tls_cert_file=cert, tls_key_file=key) as server:

        def deliver_over_tls() -> tuple[bool, dict[str, tuple[int, bytes]]]:
            with smtplib.SMTP("127.0.0.1", server.port, timeout=WAIT_S) as client:
                client.starttls(context=trusted)
                encrypted = client.sock is not None and isinstance(client.sock, ssl.SSLSocket)
                return encrypted, client.send_message(order_email(), SENDER, [f"orders@{DOMAIN}"])

        encrypted, refused = await asyncio.to_thread(deliver_over_tls)

    assert (encrypted, refused) == (True, {})
    assert len(await email_jobs(store)) == 1


async def test_a_running_gateway_serves_smtp_when_a_port_is_set(
    store: Store, settings: Settings
) -> None:
    await add_scripts(store, reader=READER)
    await add_email_trigger(store, "orders")
    configured = settings.model_copy(update={"smtp_port": 0, "email_domain": DOMAIN})
    async with Gateway.running(configured, serve_http=False, run_listeners=False) as gateway:
        assert gateway.smtp is not None
        refused = await send(gateway.smtp, order_email(), [f"orders@{DOMAIN}"])
    assert refused == {}
    (job,) = await email_jobs(store)
    assert job["trigger_kind"] == "email"

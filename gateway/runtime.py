"""`Gateway`: owns the store, the executor and the HTTP server of one instance."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import uvicorn

from gateway.clock import SystemClock
from gateway.errors import ConfigError
from gateway.executor.worker import Executor
from gateway.flows.expressions import configure as configure_expressions
from gateway.http_routes.app import create_app
from gateway.http_routes.server import server_config
from gateway.listeners.registry import listener_factories
from gateway.listeners.sql_lease_store import SqlLeaseStore
from gateway.listeners.supervisor import LeaseSupervisor, LeaseTimings
from gateway.observability.alert_rules import AlertRules
from gateway.observability.alerts import StoreAlertSink
from gateway.observability.metrics import GatewayMetrics
from gateway.observability.source_lag import LagProbe
from gateway.secrets.unlock import unlock_secrets
from gateway.settings import Settings
from gateway.store import Store, open_store
from gateway.store.migrations import migrate, pending_migrations
from gateway.triggers.capture_sink import capture_supervisor
from gateway.triggers.pipeline import TriggerJobSink

if TYPE_CHECKING:
    from gateway.email.server import SmtpServer

logger = logging.getLogger(__name__)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the gateway decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Gateway:
    """One gateway instance. Use `async with Gateway.running(settings) as gw:`."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.instance_name = settings.instance_name
        self.metrics = GatewayMetrics(settings.instance_name)
        self.lags = LagProbe(
            store, ttl_s=settings.source_lag_cache_s, timeout_s=settings.source_lag_timeout_s
        )
        self.executor = Executor(store, settings, metrics=self.metrics)
        configure_expressions(timeout_s=settings.flow_expression_timeout_s)
        factories = listener_factories(store, settings)
        alerts = StoreAlertSink(store)
        self.listeners = LeaseSupervisor(
            settings.instance_name,
            store=SqlLeaseStore(store),
            factories=factories,
            sink=TriggerJobSink(
                store, metrics=self.metrics, max_event_bytes=settings.max_event_bytes
            ),
            alerts=alerts,
            timings=LeaseTimings.from_settings(settings),
            clock=SystemClock(),
        )
        self.captures = capture_supervisor(settings, store, factories, alerts)
        self.alert_rules = AlertRules.from_settings(settings, store, self.lags)
        self.app = create_app(self)
        self._server: _EmbeddedServer | None = None
        self.smtp: SmtpServer | None = None
        self._server_task: asyncio.Task[None] | None = None

    @classmethod
    @asynccontextmanager
    async def running(
        cls,
        settings: Settings,
        *,
        serve_http: bool = True,
        run_executor: bool = True,
        run_listeners: bool = True,
    ) -> AsyncIterator[Gateway]:
        """Open the store, migrate if allowed, start the parts; stop them on exit."""
        store = await open_database(settings)
        gateway = cls(settings, store)
        try:
            if serve_http:
                await gateway._start_http()
                if not settings.public_base_url:
                    gateway.executor.base_url = settings.local_url(gateway.http_port)
            if run_executor:
                await gateway.executor.start()
            if settings.smtp_port is not None:
                await gateway._start_smtp()
            if run_listeners:
                await gateway.listeners.start()
                await gateway.captures.start()
                await gateway.alert_rules.start()
            logger.info(
                "gateway %s running (%s)",
                gateway.instance_name,
                store.dialect,
                extra={"action": "gateway_start"},
            )
            yield gateway
        finally:
            await gateway._stop_smtp()
            if run_listeners:
                await gateway.alert_rules.stop()
                await asyncio.gather(
                    gateway.listeners.stop(drain_timeout_s=settings.shutdown_grace_s),
                    gateway.captures.stop(drain_timeout_s=settings.shutdown_grace_s),
                )
            await gateway._stop_http()
            await gateway.executor.stop()
            await store.close()
            logger.info("gateway %s stopped", gateway.instance_name, extra={"action": "stop"})

    async def _start_smtp(self) -> None:
        try:  # aiosmtpd comes with the `email` extra
            from gateway.email.addresses import AddressBook
            from gateway.email.intake import EmailIntake
            from gateway.email.server import SmtpServer
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"GATEWAY_SMTP_PORT is set but {exc.name} is missing: install gateway[email]"
            ) from None
        settings = self.settings
        assert settings.smtp_port is not None
        self.smtp = SmtpServer(
            EmailIntake(
                self.store,
                AddressBook(self.store, settings.email_domain),
                max_attachment_bytes=settings.email_max_attachment_bytes,
            ),
            host=settings.smtp_host,
            port=settings.smtp_port,
            max_message_bytes=settings.smtp_max_message_bytes,
            tls_cert_file=settings.smtp_tls_cert_file,
            tls_key_file=settings.smtp_tls_key_file,
        )
        await self.smtp.start()

    async def _stop_smtp(self) -> None:
        if self.smtp is not None:
            await self.smtp.stop(grace_s=self.settings.shutdown_grace_s)
            self.smtp = None

    async def _start_http(self) -> None:
        config = server_config(self.app, self.settings.http_host, self.settings.http_port)
        self._server = _EmbeddedServer(config)
        self._server_task = asyncio.create_task(self._serve(), name="http:serve")
        while not self._server.started:
            if self._server_task.done():
                await self._server_task
                raise ConfigError(
                    f"cannot serve HTTP on {self.settings.http_host}:{self.settings.http_port}"
                )
            await asyncio.sleep(0.01)

    async def _serve(self) -> None:
        assert self._server is not None
        try:
            await self._server.serve()
        except SystemExit:
            # uvicorn exits when it cannot bind; the caller turns that into a clear error.
            return

    async def _stop_http(self) -> None:
        if self._server is not None and self._server_task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._server_task
            self._server = None

    @property
    def http_port(self) -> int:
        """The port actually bound (useful when the setting is 0)."""
        assert self._server is not None and self._server.servers
        sockets = self._server.servers[0].sockets
        return int(sockets[0].getsockname()[1])


async def open_database(settings: Settings, *, unlock: bool = True) -> Store:
    """Open the store; migrate it when `migrate_on_start`, else refuse a stale schema; then
    (with `unlock`) load the master key, check it and seal clear-text secrets."""
    store = await open_store(settings.database_url, pool_size=settings.database_pool_size)
    try:
        if settings.migrate_on_start:
            await migrate(store)
        elif missing := await pending_migrations(store):
            raise ConfigError(
                f"the database lacks {len(missing)} migration(s); run `gateway migrate` first"
            )
        if unlock:
            await unlock_secrets(store, settings)
    except BaseException:
        await store.close()
        raise
    return store

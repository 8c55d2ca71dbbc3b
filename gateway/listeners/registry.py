"""Which listener kinds this installation can run: one module per kind, each optional.

A kind whose client library is not installed (its `gateway[<kind>]` extra) is left out with
one log line; its triggers stay unclaimed, so an instance that has the library takes them.
"""

from __future__ import annotations

import importlib
import logging

from gateway.listeners.base import ListenerFactory
from gateway.net_guard import NetGuard
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.trigger_tables import LEASED_KINDS

logger = logging.getLogger(__name__)


def listener_factories(
    store: Store, settings: Settings, kinds: tuple[str, ...] = LEASED_KINDS
) -> dict[str, ListenerFactory]:
    """The factory of every listener kind whose module and client library import."""
    factories: dict[str, ListenerFactory] = {}
    for kind in kinds:
        try:
            module = importlib.import_module(f"gateway.listeners.{kind}")
        except ModuleNotFoundError as exc:
            logger.info(
                "%s triggers are not served by this instance: %s (install gateway[%s])",
                kind,
                exc,
                kind,
                extra={"action": "listener_unavailable", "kind": kind},
            )
            continue
        if kind == "gcp":
            # Push subscriptions can only be pointed at a gateway that says where it is public.
            options = module.GcpOptions(push_base_url=settings.public_base_url)
            factories[kind] = module.listener_factory(store, options)
        elif kind == "kafka":
            consumer = module.ConsumerOptions(max_batch=settings.listener_max_batch)
            factories[kind] = module.listener_factory(store, consumer)
        elif kind == "websocket":
            guarded = module.WebsocketOptions(guard=NetGuard.from_settings(settings))
            factories[kind] = module.listener_factory(store, guarded)
        elif kind == "nats":
            factories[kind] = module.listener_factory(store, settings.listener_max_batch)
        else:
            factories[kind] = module.listener_factory(store)
    return factories

"""Source lag, read on demand: how far behind its source a trigger's consumer is.

- Kafka: the records after the group's committed offsets, summed over the partitions that have one;
- SQS: the messages the queue holds visible, waiting to be received;
- PostgreSQL: the bytes of WAL after the replication slot's confirmed position.

Every read opens a short-lived client to the source, so `LagProbe` caches each trigger's answer
for `ttl_s`. A read that fails or outlasts `timeout_s` is reported as unknown, with the reason;
it never raises. The client libraries are imported when a read happens, so an installation
without one reports that trigger's lag as unknown and serves everything else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from gateway.clock import Clock, SystemClock
from gateway.listeners import kafka_config, postgres_config, sqs_config
from gateway.listeners.lease import TriggerRef
from gateway.resources import resource_value
from gateway.store import Store, fetch_all

logger = logging.getLogger(__name__)

MAX_CONCURRENT_READS: Final = 8
"""Sources read at once by one probe: a status page of many triggers must not open a flood."""


@dataclass(frozen=True, slots=True)
class SourceLag:
    """A trigger's lag in `unit` (`messages` or `bytes`); `value` None when it is unknown."""

    unit: str
    value: int | None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """`{"value", "unit"}`; the value is `"unknown"`, with the `error`, when unread."""
        if self.value is None:
            return {"value": "unknown", "unit": self.unit, "error": self.error}
        return {"value": self.value, "unit": self.unit}


LagReader = Callable[[Store, TriggerRef, Mapping[str, Any]], Awaitable[SourceLag]]
"""Reads the lag of one trigger from its source, given its row; raises when it cannot."""


async def kafka_lag(store: Store, trigger: TriggerRef, row: Mapping[str, Any]) -> SourceLag:
    """Records after the committed offsets of the trigger's group, over its topics."""
    from gateway.listeners.kafka import consumer_lag

    config = kafka_config.validate_trigger(row)
    value = await resource_value(store, trigger.workspace_id, config.kafka_resource_path)
    partitions = await consumer_lag(
        kafka_config.parse_resource(value), config.group_id, config.topics
    )
    known = [partition.lag for partition in partitions if partition.lag is not None]
    if not known:
        return SourceLag("messages", None, "the consumer group has committed no offset yet")
    return SourceLag("messages", sum(known))


async def sqs_lag(store: Store, trigger: TriggerRef, row: Mapping[str, Any]) -> SourceLag:
    """The messages visible in the trigger's queue (SQS's approximate count)."""
    from gateway.listeners.sqs import queue_depth

    config = sqs_config.validate_trigger(row)
    value = await resource_value(store, trigger.workspace_id, config.aws_resource_path)
    resource = sqs_config.parse_resource(value, config.aws_auth_resource_type)
    depth = await queue_depth(config, resource)
    return SourceLag("messages", depth.visible)


async def postgres_lag(store: Store, trigger: TriggerRef, row: Mapping[str, Any]) -> SourceLag:
    """The WAL bytes after the confirmed position of the trigger's replication slot."""
    from gateway.listeners.postgres import slot_lag

    config = postgres_config.validate_trigger(row)
    value = await resource_value(store, trigger.workspace_id, config.postgres_resource_path)
    lag = await slot_lag(postgres_config.parse_resource(value), config.replication_slot_name)
    if lag.lag_bytes is None:
        return SourceLag("bytes", None, "the replication slot has confirmed no position yet")
    return SourceLag("bytes", lag.lag_bytes)


READERS: Mapping[str, LagReader] = {"kafka": kafka_lag, "sqs": sqs_lag, "postgres": postgres_lag}
UNITS: Mapping[str, str] = {"kafka": "messages", "sqs": "messages", "postgres": "bytes"}


class LagProbe:
    """Reads the lag of triggers whose kind has one, caching each answer for `ttl_s`."""

    def __init__(
        self,
        store: Store,
        *,
        ttl_s: float = 15.0,
        timeout_s: float = 5.0,
        clock: Clock | None = None,
        readers: Mapping[str, LagReader] = READERS,
    ) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._clock = clock if clock is not None else SystemClock()
        self._readers = dict(readers)
        self._cache: dict[TriggerRef, tuple[float, SourceLag]] = {}
        self._reads = asyncio.Semaphore(MAX_CONCURRENT_READS)

    def measures(self, kind: str) -> bool:
        """Whether triggers of `kind` have a lag this probe reads."""
        return kind in self._readers

    async def lags(self, triggers: Iterable[TriggerRef]) -> dict[TriggerRef, SourceLag]:
        """The lag of each trigger whose kind has one: cached, or read now (in parallel)."""
        now = self._clock.monotonic()
        self._cache = {
            trigger: entry for trigger, entry in self._cache.items() if now - entry[0] < self._ttl_s
        }
        found: dict[TriggerRef, SourceLag] = {}
        missing: list[TriggerRef] = []
        for trigger in dict.fromkeys(triggers):
            if not self.measures(trigger.kind):
                continue
            if trigger in self._cache:
                found[trigger] = self._cache[trigger][1]
            else:
                missing.append(trigger)
        if missing:
            rows = await self._rows(missing)
            read = await asyncio.gather(
                *(self._read(trigger, rows.get(trigger)) for trigger in missing)
            )
            for trigger, lag in zip(missing, read, strict=True):
                self._cache[trigger] = (self._clock.monotonic(), lag)
                found[trigger] = lag
        return found

    async def _rows(self, triggers: list[TriggerRef]) -> dict[TriggerRef, Mapping[str, Any]]:
        """The rows of `triggers`: one list query per kind and workspace, not one per trigger."""
        rows: dict[TriggerRef, Mapping[str, Any]] = {}
        for kind, workspace_id in dict.fromkeys((t.kind, t.workspace_id) for t in triggers):
            for row in await fetch_all(
                self._store, f"list_{kind}_triggers", workspace_id=workspace_id
            ):
                rows[TriggerRef(kind, workspace_id, row["path"])] = row
        return rows

    async def _read(self, trigger: TriggerRef, row: Mapping[str, Any] | None) -> SourceLag:
        unit = UNITS.get(trigger.kind, "messages")
        if row is None:
            return SourceLag(unit, None, "the trigger no longer exists")
        try:
            async with self._reads, asyncio.timeout(self._timeout_s):
                return await self._readers[trigger.kind](self._store, trigger, row)
        except TimeoutError:
            problem = f"the source did not answer within {self._timeout_s:g}s"
        except ModuleNotFoundError as exc:
            problem = f"{exc.name} is not installed (gateway[{trigger.kind}])"
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        logger.debug(
            "%s trigger %s: lag unknown: %s",
            trigger.kind,
            trigger,
            problem,
            extra={"action": "lag_unknown", "trigger": str(trigger), "kind": trigger.kind},
        )
        return SourceLag(unit, None, problem)

"""The PostgreSQL CDC listener: one logical replication stream (pgoutput) per leased
`postgres_trigger`.

Delivery is at-least-once. A transaction's changes are read from Begin to Commit and yielded as
one batch, one event per inserted, updated or deleted row, with the dedup key
`<slot>/<commit LSN>/<index of the change in the transaction>`. `ack` confirms the transaction's
commit end LSN to the server, and the supervisor acks only once the jobs are committed: a crash,
a closed listener or a nack before that leaves the slot before the transaction, so the server
sends it again and each change maps to the job it already became. `nack` reconnects from the
last confirmed position. An ack that is not for the batch in flight (a second ack, or one after
a nack) confirms nothing: positions are only confirmed in order.

While nothing is in flight (no transaction half read, no batch waiting for its ack) the listener
confirms the WAL end of the server's keepalives. The server sends them as WAL goes by that the
publication does not cover, so a quiet publication never holds back the server's WAL; the stream
repeats the confirmed position every `status_interval_s` (`replication`). A transaction without
row changes (no published table, or truncates only) is confirmed the same way. Truncates are not
row changes: they are logged and not delivered, as in Windmill.

For the trigger status, `slot_lag` measures on a short-lived connection how many bytes of WAL
the slot's confirmed position is behind the server. The management API's slot and publication
operations are in `gateway.http_routes.api.postgres_triggers`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar, Final, Protocol

from gateway.errors import NotFound
from gateway.listeners.base import Batch, ListenerFactory
from gateway.listeners.lease import Lease
from gateway.listeners.pgoutput import (
    UNCHANGED_TOAST,
    Begin,
    Commit,
    Delete,
    Insert,
    PgoutputError,
    Relation,
    Truncate,
    Update,
    decode,
    format_lsn,
    row_values,
)
from gateway.listeners.postgres_config import (
    PostgresResource,
    PostgresTriggerConfig,
    admin_connection,
    connection_params,
    parse_resource,
    validate_trigger,
)
from gateway.listeners.replication import Keepalive, ReplicationStream, StreamMessage
from gateway.resources import resource_value
from gateway.store import Store
from gateway.triggers.event import Event

logger = logging.getLogger(__name__)

ResourceLoader = Callable[[str, str], Awaitable[Any]]
"""Reads a resource's value by workspace and path (`resource_value` on a store)."""
STATUS_INTERVAL_S: Final = 10.0


class Stream(Protocol):
    """What the listener needs of a replication stream (`ReplicationStream`)."""

    @property
    def confirmed(self) -> int:
        """The flush LSN reported to the server."""
        ...

    def confirm(self, lsn: int) -> None:
        """Raise the reported flush LSN (never lowers it)."""
        ...

    async def send_status(self, *, reply_requested: bool = False) -> None:
        """Report the confirmed position now."""
        ...

    async def read(self) -> StreamMessage:
        """The next message from the server."""
        ...

    async def close(self) -> None:
        """Close the connection; idempotent."""
        ...


StreamOpener = Callable[[PostgresResource, PostgresTriggerConfig, int], Awaitable[Stream]]
"""Opens a stream of the trigger's slot and publication after an LSN."""


def stream_opener(status_interval_s: float = STATUS_INTERVAL_S) -> StreamOpener:
    """Opens `ReplicationStream`s that send a status update every `status_interval_s`."""

    async def open_stream(
        resource: PostgresResource, config: PostgresTriggerConfig, start_lsn: int
    ) -> Stream:
        async with connection_params(resource) as params:
            return await ReplicationStream.open(
                params,
                config.replication_slot_name,
                config.publication_name,
                start_lsn=start_lsn,
                status_interval_s=status_interval_s,
            )

    return open_stream


@dataclass(frozen=True, slots=True)
class PostgresAckToken:
    """A transaction's commit: `end_lsn` is what its ack confirms."""

    commit_lsn: int
    end_lsn: int


@dataclass(frozen=True, slots=True)
class ChangePosition:
    """Where a change sits in its slot's stream: its identity across redeliveries."""

    slot: str
    commit_lsn: int
    index: int

    @property
    def dedup_key(self) -> str:
        """`<slot>/<commit LSN>/<index>`."""
        return f"{self.slot}/{format_lsn(self.commit_lsn)}/{self.index}"


@dataclass(slots=True)
class _Transaction:
    """The events of the transaction being read."""

    commit_lsn: int
    events: list[Event] = field(default_factory=list)


class PostgresListener:
    """A logical replication stream for one leased trigger; see the module docstring."""

    kind: ClassVar[str] = "postgres"
    delivery_guarantee: ClassVar[str] = "at-least-once"

    def __init__(self, lease: Lease, resources: ResourceLoader, open_stream: StreamOpener) -> None:
        self._lease = lease
        self._resources = resources
        self._open_stream = open_stream
        self._resource: PostgresResource | None = None
        self._config: PostgresTriggerConfig | None = None
        self._stream: Stream | None = None
        self._relations: dict[int, Relation] = {}  # per connection: the server resends them
        self._transaction: _Transaction | None = None
        self._in_flight: PostgresAckToken | None = None  # yielded, neither acked nor nacked
        self._rewind = False  # a nack asked for the stream to start again from `confirmed`

    async def connect(self) -> None:
        """Read the trigger and its resource, connect and start streaming the slot.

        `NotFound` names a missing slot or publication; `ConnectionError` other failures.
        """
        self._config = validate_trigger(self._lease.row)
        self._resource = parse_resource(
            await self._resources(
                self._lease.trigger.workspace_id, self._config.postgres_resource_path
            )
        )
        self._stream = await self._open_stream(self._resource, self._config, 0)

    async def consume(self) -> AsyncIterator[Batch]:
        """Yield one batch per committed transaction that changed rows, in commit order."""
        while True:
            if self._rewind:
                await self._reconnect()
            stream = self._require_stream()
            message = await stream.read()
            if isinstance(message, Keepalive):
                if self._idle():
                    stream.confirm(message.wal_end)
                if message.reply_requested:
                    await stream.send_status()
                continue
            batch = self._apply(message.payload)
            if batch is not None:
                self._in_flight = batch.ack_token
                yield batch

    async def ack(self, batch: Batch) -> None:
        """Confirm the batch's commit end LSN to the server, if it is the batch in flight."""
        token: PostgresAckToken = batch.ack_token
        stream = self._stream
        if token != self._in_flight or stream is None:
            return
        self._in_flight = None
        stream.confirm(token.end_lsn)
        await stream.send_status()

    async def nack(self, batch: Batch) -> None:
        """Start the stream again from the last confirmed position, which resends the batch."""
        self._in_flight = None
        self._rewind = True

    async def close(self) -> None:
        """Close the stream; what was not acked is sent again to the next connection."""
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.close()

    def _require_stream(self) -> Stream:
        if self._stream is None:
            raise RuntimeError(f"postgres trigger {self._lease.trigger} is not connected")
        return self._stream

    def _require_config(self) -> tuple[PostgresResource, PostgresTriggerConfig]:
        if self._resource is None or self._config is None:
            raise RuntimeError(f"postgres trigger {self._lease.trigger} is not connected")
        return self._resource, self._config

    def _idle(self) -> bool:
        """Nothing read is unconfirmed: a position the server reaches now can be confirmed."""
        return self._transaction is None and self._in_flight is None

    async def _reconnect(self) -> None:
        resource, config = self._require_config()
        stream = self._require_stream()
        start = stream.confirmed
        self._stream = None
        await stream.close()
        self._relations.clear()
        self._transaction = None
        self._rewind = False
        self._stream = await self._open_stream(resource, config, start)
        logger.info(
            "postgres trigger %s: streaming again from %s",
            self._lease.trigger,
            format_lsn(start),
            extra=self._extra("cdc_rewound"),
        )

    def _apply(self, payload: bytes) -> Batch | None:
        """Take one pgoutput message; the batch of a transaction when it commits."""
        message = decode(payload)
        if isinstance(message, Relation):
            self._relations[message.oid] = message
        elif isinstance(message, Begin):
            if self._transaction is not None:
                raise PgoutputError("a transaction began before the previous one committed")
            self._transaction = _Transaction(message.final_lsn)
        elif isinstance(message, Insert | Update | Delete):
            transaction = self._open_transaction(message)
            relation = self._relations.get(message.relation_oid)
            if relation is None:
                raise PgoutputError(
                    f"a change names relation {message.relation_oid}, never described"
                )
            _, config = self._require_config()
            position = ChangePosition(
                config.replication_slot_name, transaction.commit_lsn, len(transaction.events)
            )
            transaction.events.append(to_event(message, relation, position, payload))
        elif isinstance(message, Truncate):
            self._open_transaction(message)
            logger.info(
                "postgres trigger %s: a truncate of %s is not a row change, no job",
                self._lease.trigger,
                ", ".join(self._relation_name(oid) for oid in message.relation_oids),
                extra=self._extra("cdc_truncate_skipped"),
            )
        elif isinstance(message, Commit):
            return self._commit(message)
        return None

    def _open_transaction(self, message: object) -> _Transaction:
        if self._transaction is None:
            raise PgoutputError(f"{type(message).__name__} outside a transaction")
        return self._transaction

    def _commit(self, commit: Commit) -> Batch | None:
        transaction = self._open_transaction(commit)
        self._transaction = None
        if not transaction.events:
            if self._in_flight is None:
                self._require_stream().confirm(commit.end_lsn)
            return None
        return Batch(
            events=tuple(transaction.events),
            ack_token=PostgresAckToken(commit.commit_lsn, commit.end_lsn),
        )

    def _relation_name(self, oid: int) -> str:
        relation = self._relations.get(oid)
        return f"{relation.namespace}.{relation.name}" if relation else f"relation {oid}"

    def _extra(self, action: str) -> dict[str, str]:
        return {"action": action, "trigger": str(self._lease.trigger), "kind": self.kind}


def listener_factory(store: Store, open_stream: StreamOpener | None = None) -> ListenerFactory:
    """Builds PostgreSQL listeners that read their resource from `store` when they connect."""
    opener = open_stream if open_stream is not None else stream_opener()

    def build(lease: Lease) -> PostgresListener:
        return PostgresListener(lease, partial(resource_value, store), opener)

    return build


def to_event(
    change: Insert | Update | Delete, relation: Relation, position: ChangePosition, raw: bytes
) -> Event:
    """The event of one row change; `raw` is its pgoutput message.

    Payload: `{"transaction_type": "insert" | "update" | "delete", "schema_name", "table_name",
    "old_row", "row"}`. An insert's `row` is the new row. An update's `row` is the new row and
    its `old_row` the old one as the server sent it: the whole row under REPLICA IDENTITY FULL,
    the key columns (others None) when the key changed, else None. A delete's `row` is the old
    row (whole or key only) and its `old_row` None. A TOASTed column an update left unchanged
    is not sent: its value comes from `old_row` when that has it, else it is None and the column
    is listed in the info's `unchanged_toast_columns`.
    """
    old_row: dict[str, Any] | None = None
    if isinstance(change, Insert):
        transaction_type, row = "insert", row_values(relation, change.new)
    elif isinstance(change, Update):
        transaction_type, row = "update", row_values(relation, change.new)
        if change.old is not None:
            old_row = row_values(relation, change.old)
    else:
        transaction_type, row = "delete", row_values(relation, change.old)
    unchanged: list[str] = []
    for name, value in row.items():
        if value is UNCHANGED_TOAST:
            known = None if old_row is None else old_row.get(name)
            row[name] = None if known is UNCHANGED_TOAST else known
            if row[name] is None:
                unchanged.append(name)
    if old_row is not None:
        old_row = {name: None if v is UNCHANGED_TOAST else v for name, v in old_row.items()}
    return Event(
        kind="postgres",
        payload={
            "transaction_type": transaction_type,
            "schema_name": relation.namespace,
            "table_name": relation.name,
            "old_row": old_row,
            "row": row,
        },
        info={"unchanged_toast_columns": unchanged},
        dedup_key=position.dedup_key,
        raw=raw,
    )


# The trigger status ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlotLag:
    """How far a slot's confirmed position is behind the server's current WAL position."""

    slot_name: str
    active: bool
    confirmed_flush_lsn: int | None
    current_lsn: int
    lag_bytes: int | None


async def slot_lag(resource: PostgresResource, slot: str) -> SlotLag:
    """The slot's lag in bytes of WAL (None when the slot never confirmed a position)."""
    async with admin_connection(resource, "name") as conn:
        cursor = await conn.execute(
            "SELECT active, confirmed_flush_lsn - '0/0'::pg_lsn AS confirmed,"
            " pg_current_wal_lsn() - '0/0'::pg_lsn AS current,"
            " pg_current_wal_lsn() - confirmed_flush_lsn AS lag"
            " FROM pg_replication_slots WHERE slot_name = %s",
            [slot],
        )
        found = await cursor.fetchone()
    if found is None:
        raise NotFound(f"replication slot {slot!r} does not exist in {resource.describe()}")
    return SlotLag(
        slot,
        bool(found["active"]),
        _int_or_none(found["confirmed"]),
        int(found["current"]),
        _int_or_none(found["lag"]),
    )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)

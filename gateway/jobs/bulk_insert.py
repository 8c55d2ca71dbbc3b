"""New jobs written as rows, not as one JSON document: the fast path of a batch of jobs.

On PostgreSQL the rows are streamed with COPY, on SQLite they go through one prepared INSERT
(executemany); either way the database parses no JSON array and plans no set-returning function,
which is most of an `INSERT ... SELECT FROM jsonb_to_recordset` (or `json_each`) of a large batch.
A bulk write cannot call `now()` per row, so every row is stamped with the clock read once at the
start (`transaction_now`): on PostgreSQL the very instant `now()` gives in that transaction.

Jobs that differ only in their ids and args (the events of one trigger, `copy_similar_jobs`) have
the columns they share encoded once per batch (`CopyingTransaction.copy_field`), and their args
go as the JSON text their caller serialised already.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from gateway.store import CopyingTransaction

COPY_MIN_RECORDS: Final = 8
"""Below this many jobs the two JSON statements are cheaper than the three bulk round trips."""


async def copy_records(tx: CopyingTransaction, records: Sequence[Mapping[str, Any]]) -> None:
    """Insert job records (`enqueue.job_record`) and their queue rows as bulk writes."""
    now = await _transaction_now(tx)
    await tx.copy_rows("copy_jobs", _job_rows(records, now))
    await tx.copy_rows("copy_queue_rows", _queue_rows(records, now))


async def copy_similar_jobs(
    tx: CopyingTransaction, record: Mapping[str, Any], jobs: Sequence[tuple[str, str]]
) -> None:
    """Insert jobs, each `record` (`enqueue.job_record`) but for its id and its args (both as
    text), and their queue rows, as bulk writes."""
    now = await _transaction_now(tx)
    field = tx.copy_field
    ids = [field(job_id) for job_id, _ in jobs]
    [job] = [tuple(map(field, row)) for row in _job_rows([record], now)]
    # Every column but the id and the args (the last but one) is the record's.
    shared, labels = job[1:-2], job[-1]
    rows = [
        (job_id, *shared, field(args), labels) for job_id, (_, args) in zip(ids, jobs, strict=True)
    ]
    await tx.copy_fields("copy_jobs", rows)
    [queued] = [tuple(map(field, row)) for row in _queue_rows([record], now)]
    await tx.copy_fields("copy_queue_rows", [(job_id, *queued[1:]) for job_id in ids])


async def copy_dedup_keys(
    tx: CopyingTransaction, workspace_id: str, claims: Iterable[tuple[str, str]]
) -> bool:
    """Record that each dedup key (of `workspace_id`) maps to its new job (its id as text), if
    no key was seen before; False, and nothing written, when one was."""
    field = tx.copy_field
    workspace = field(workspace_id)
    rows = [(workspace, field(key), field(job_id)) for key, job_id in claims]
    return await tx.copy_fields("copy_dedup_keys", rows, new_only=True)


async def _transaction_now(tx: CopyingTransaction) -> datetime:
    clock = await tx.fetch_one("transaction_now")
    assert clock is not None, "SELECT now() returns a row"
    now = clock["now"]
    # SQLite's now() is text (the fixed-width form its timestamps are compared in).
    return datetime.fromisoformat(now) if isinstance(now, str) else now


def _job_rows(records: Sequence[Mapping[str, Any]], now: datetime) -> Iterator[tuple[Any, ...]]:
    """The v2_job rows, in the column order of `copy_jobs`.

    The JSON columns go as text: both databases parse it, and `json.dumps` is cheaper than a
    driver's adapter lookup for every value.
    """
    for r in records:
        raw_flow = r["raw_flow"]
        yield (
            r["id"], now, r["raw_code"], None if raw_flow is None else json.dumps(raw_flow),
            r["tag"], r["workspace_id"], r["created_by"], r["permissioned_as"],
            r["permissioned_as_email"], r["kind"], r["runnable_id"], r["runnable_path"],
            r["parent_job"], r["root_job"], r["script_lang"], r["flow_step"], r["flow_step_id"],
            r["trigger"], r["trigger_kind"], r["timeout"], r["priority"], r["preprocessed"],
            json.dumps(r["args"]), r["labels"],
        )  # fmt: skip


def _queue_rows(records: Sequence[Mapping[str, Any]], now: datetime) -> Iterator[tuple[Any, ...]]:
    """The v2_job_queue rows, in the column order of `copy_queue_rows`."""
    for r in records:
        delay_s = r["delay_s"]
        scheduled_for = now + timedelta(seconds=delay_s) if delay_s else now
        started_at = now if r["running"] else None
        yield (
            r["id"], r["workspace_id"], now, scheduled_for, r["running"], started_at, r["tag"],
            r["priority"],
        )  # fmt: skip

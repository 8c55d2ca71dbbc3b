"""The event every listener produces from one source message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """One source message, turned into what job creation needs.

    ``payload`` depends on ``kind``:

    * ``kafka``, ``nats``, ``mqtt``: the message value as ``bytes``;
    * ``sqs``: the message body, ``websocket``: the text frame, both ``str``;
    * ``gcp``: the message data as a base64 ``str``, exactly as Pub/Sub delivers it;
    * ``postgres``: ``{"transaction_type", "schema_name", "table_name", "old_row", "row"}``;
    * ``email``: ``{"raw_email", "parsed_email", "email_extra_args"?}``.

    ``info`` is the trigger-info map of the kind (topic, partition, queue url, ...), passed to the
    job as the listener built it, so it must be JSON-serializable. ``dedup_key`` is unique per
    source message (a redelivery carries the same key); None when the source has no such identity.
    ``raw`` keeps the original bytes for the quarantine.
    """

    kind: str
    payload: Any
    info: Mapping[str, Any]
    dedup_key: str | None
    raw: bytes

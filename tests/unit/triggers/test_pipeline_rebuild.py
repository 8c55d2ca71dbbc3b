"""Turning a quarantined event back into the event its listener made."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.triggers.event import Event
from gateway.triggers.quarantine import QuarantinedEvent, RebuildError, rebuild_event


def kept(kind: str, raw: bytes, info: dict[str, object] | None = None) -> QuarantinedEvent:
    """A quarantine row of a `kind` event."""
    return QuarantinedEvent(
        id=1,
        workspace_id="acme",
        trigger_kind=kind,
        trigger_path="u/ops/t",
        dedup_key="k-1",
        raw=raw,
        info=info or {},
        error="bad",
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
        redriven_at=None,
        redriven_job_id=None,
    )


@pytest.mark.parametrize("kind", ["kafka", "nats", "mqtt"])
def test_binary_payloads_are_the_raw_bytes(kind: str) -> None:
    entry = kept(kind, b"\x00\xff", {"topic": "orders"})
    assert rebuild_event(entry) == Event(kind, b"\x00\xff", {"topic": "orders"}, "k-1", b"\x00\xff")


@pytest.mark.parametrize("kind", ["sqs", "websocket"])
def test_text_payloads_are_the_raw_bytes_decoded(kind: str) -> None:
    assert rebuild_event(kept(kind, "héllo".encode())).payload == "héllo"


def test_text_that_is_not_utf8_cannot_be_rebuilt() -> None:
    with pytest.raises(RebuildError, match="not UTF-8"):
        rebuild_event(kept("websocket", b"\xff"))


@pytest.mark.parametrize("kind", ["gcp", "postgres", "email"])
def test_kinds_whose_payload_is_not_kept_cannot_be_rebuilt(kind: str) -> None:
    with pytest.raises(RebuildError, match=f"a {kind} event cannot be rebuilt"):
        rebuild_event(kept(kind, b"x"))

"""The offsets helpers refuse impossible positions before they contact any broker."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidInput
from gateway.listeners.kafka import PartitionLag, commit_offsets
from gateway.listeners.kafka_config import parse_resource

# Nothing listens there: a helper that reached for the network would fail with ConnectionError.
UNREACHABLE = parse_resource({"brokers": ["127.0.0.1:1"]})


@pytest.mark.parametrize(
    ("partition", "offset", "field"), [(-1, 0, "partition"), (0, -5, "offset")]
)
async def test_commit_offsets_refuses_a_negative_position(
    partition: int, offset: int, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await commit_offsets(UNREACHABLE, "g", "orders", partition, offset)

    assert caught.value.field == field


def test_lag_is_the_records_after_the_committed_offset() -> None:
    assert PartitionLag("orders", 0, end_offset=10, committed=4).lag == 6


def test_a_group_that_never_committed_has_no_lag_figure() -> None:
    assert PartitionLag("orders", 0, end_offset=10, committed=None).lag is None

"""Job ids are version 7 UUIDs: they carry their creation time and sort by it."""

from __future__ import annotations

import time
import uuid

import pytest

from gateway.jobs import job_ids
from gateway.jobs.job_ids import new_job_id, new_job_ids


def test_a_job_id_is_a_version_7_uuid_holding_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    job_id = new_job_id()
    after = time.time_ns() // 1_000_000

    assert job_id.version == 7
    assert job_id.variant == uuid.RFC_4122
    assert before <= job_id.int >> 80 <= after


def test_ids_of_later_milliseconds_sort_after_earlier_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter([1_700_000_000_000_000_000, 1_700_000_000_001_000_000])
    monkeypatch.setattr(job_ids.time, "time_ns", lambda: next(clock))

    earlier, later = new_job_id(), new_job_id()

    assert str(earlier) < str(later)
    assert earlier.int >> 80 == 1_700_000_000_000


def test_a_batch_of_ids_is_distinct_and_well_formed() -> None:
    ids = new_job_ids(1000)

    assert len(set(ids)) == 1000
    assert {job_id.version for job_id in ids} == {7}
    assert {job_id.variant for job_id in ids} == {uuid.RFC_4122}
    assert len({job_id.int >> 80 for job_id in ids}) == 1

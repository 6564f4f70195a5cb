"""Bulk enqueue beyond one statement's parameter limit keeps the dedup rules; the SQL has the promised shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from litestar_queues.clock import utc_now
from litestar_queues.records import TaskRecord, new_record_id

pytestmark = pytest.mark.anyio

COUNT = 5001
"""More rows than one chunk on every database (SQLite 1213, MySQL 2427, PostgreSQL 5000 per statement)."""


async def test_bulk_enqueue_across_chunks_creates_each_record_once(
    driver: str, make_factory: Callable[..., Any]
) -> None:
    backend = await make_factory(driver).open()
    now = utc_now()
    records = [
        TaskRecord(
            id=new_record_id(),
            task_name="t",
            args=[n],
            key=f"k{n}" if n % 10 == 0 else None,
            created_at=now,
            scheduled_at=now,
        )
        for n in range(COUNT)
    ]
    existing = records[4000]
    assert (await backend.enqueue([existing]))[0].created
    # Later records repeating a key (taken within this call) or an id (stored before) resolve to the holder.
    repeats = [
        TaskRecord(id=new_record_id(), task_name="t", key="k10", created_at=now, scheduled_at=now),
        TaskRecord(id=existing.id, task_name="other", created_at=now, scheduled_at=now),
    ]
    outcomes = await backend.enqueue([*records, *repeats])
    assert len(outcomes) == COUNT + 2
    assert [outcome.created for outcome in outcomes[:COUNT]] == [n != 4000 for n in range(COUNT)]
    assert [outcome.record.id for outcome in outcomes[:COUNT]] == [record.id for record in records]
    assert (outcomes[-2].created, outcomes[-2].record.id) == (False, records[10].id)
    assert (outcomes[-1].created, outcomes[-1].record) == (False, existing)
    stats = await backend.statistics(now=now)
    assert sum(stats.counts.values()) == COUNT
    assert await backend.get(records[-1].id) == records[-1]

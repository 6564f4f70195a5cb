"""Records damaged in Redis/Valkey itself, field by field: named, isolated, and no script ever fails on them.

The conformance suite checks the rule with one damaged field (``args``); these cover what the scripts read too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from litestar_queues.backends.resp import RespBackend
from litestar_queues.records import RecordFilter, TaskRecord, TaskStatus, new_record_id
from litestar_queues.salvage import UNDECODABLE

pytestmark = pytest.mark.anyio


async def _stored(backend: RespBackend, now: datetime) -> list[TaskRecord]:
    records = [
        TaskRecord(id=new_record_id(), task_name="t", queue="q", args=[n], created_at=now, scheduled_at=now)
        for n in range(3)
    ]
    await backend.enqueue(records)
    return records


async def _damage(backend: RespBackend, record_id: str, field: str, value: str) -> None:
    client: Any = backend._client
    prefix = backend.config.key_prefix
    if field == "body":
        await client.set(f"{prefix}:b:{record_id}", value)
    else:
        await client.hset(f"{prefix}:r:{record_id}", field, value)


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("body", "not json", "'args'"),
        ("body", '{"an": "object"}', "'args'"),
        ("p", "high", "'priority'"),
        ("x", "soon", "'expires_at'"),
        ("r", "{", "'result'"),
        ("e", "[1]", "'error'"),
    ],
)
async def test_a_damaged_field_is_named_and_the_rest_of_the_batch_is_claimed(
    backend: RespBackend, now: datetime, field: str, value: str, named: str
) -> None:
    first, broken, last = await _stored(backend, now)
    await _damage(backend, broken.id, field, value)
    claimed = await backend.claim(["q"], owner="w", limit=10, now=now, lease_seconds=30)
    assert [record.id for record in claimed] == [first.id, last.id]
    stored = await backend.get(broken.id)
    assert stored is not None and stored.status is TaskStatus.FAILED
    assert stored.error is not None and stored.error.type == UNDECODABLE
    assert f"record {broken.id} cannot be decoded: stored field {named}" in stored.error.message
    page = await backend.query(RecordFilter(queue="q"), limit=10)
    assert {record.id for record in page.records} == {first.id, broken.id, last.id}


async def test_a_status_nobody_knows_is_set_aside(backend: RespBackend, now: datetime) -> None:
    first, broken, last = await _stored(backend, now)
    await _damage(backend, broken.id, "s", "bogus")
    claimed = await backend.claim(["q"], owner="w", limit=10, now=now, lease_seconds=30)
    assert [record.id for record in claimed] == [first.id, last.id], "its stale pending entry is dropped"
    stored = await backend.get(broken.id)
    assert stored is not None and stored.status is TaskStatus.FAILED  # shown as failed: nothing acts on it
    assert stored.error is not None and "stored field 'status'" in stored.error.message
    assert await backend.claim(["q"], owner="w", limit=10, now=now, lease_seconds=30) == []


async def test_a_counter_that_is_not_a_number_counts_as_zero(backend: RespBackend, now: datetime) -> None:
    first, broken, last = await _stored(backend, now)
    await _damage(backend, broken.id, "t", "x")
    await _damage(backend, broken.id, "a", "many")
    claimed = await backend.claim(["q"], owner="w", limit=10, now=now, lease_seconds=30)
    assert [record.id for record in claimed] == [first.id, broken.id, last.id], "no script failed"
    assert (claimed[1].token, claimed[1].attempts) == (1, 1)


async def test_a_cancelled_record_with_a_damaged_priority_is_never_claimed(backend: RespBackend, now: datetime) -> None:
    """Its pending-index entry is not where the hash says (cancel cannot remove it); a claim drops it instead."""
    (record, *_) = await _stored(backend, now)
    await _damage(backend, record.id, "p", "high")
    cancelled = await backend.cancel(record.id, now=now)
    assert cancelled is not None and cancelled.status is TaskStatus.CANCELLED
    claimed = await backend.claim(["q"], owner="w", limit=10, now=now, lease_seconds=30)
    assert record.id not in {other.id for other in claimed}
    assert (await backend.get(record.id)).status is TaskStatus.CANCELLED  # type: ignore[union-attr]

"""Rows damaged in the database itself, column by column: named, isolated, and no statement fails on them.

The conformance suite checks the rule with one damaged column (``args``); these cover the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import literal

from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackend
from litestar_queues.clock import utc_now
from litestar_queues.records import RecordFilter, TaskRecord, TaskStatus, new_record_id
from litestar_queues.salvage import UNDECODABLE

pytestmark = pytest.mark.anyio


async def _damage(backend: AdvancedAlchemyBackend, record_id: str, column: str, value: str) -> None:
    tasks = backend.tables.tasks
    async with backend.engine.begin() as connection:
        # a literal: the column's own type would refuse text where it keeps numbers (SQLite stores it anyway)
        await connection.execute(tasks.update().where(tasks.c.id == record_id).values({column: literal(value)}))


def _records(count: int) -> list[TaskRecord]:
    now = utc_now()
    return [
        TaskRecord(id=new_record_id(), task_name="t", queue="q", args=[n], created_at=now, scheduled_at=now)
        for n in range(count)
    ]


@pytest.mark.parametrize(
    ("column", "value"),
    [("kwargs", "[1, 2]"), ("metadata", "not json"), ("result", "{"), ("error", '{"type": 1}')],
)
async def test_a_damaged_column_is_named_and_the_rest_of_the_batch_is_claimed(
    driver: str, make_factory: Callable[..., Any], column: str, value: str
) -> None:
    backend: AdvancedAlchemyBackend = await make_factory(driver).open()
    records = _records(3)
    await backend.enqueue(records)
    first, broken, last = records
    await _damage(backend, broken.id, column, value)
    claimed = await backend.claim(["q"], owner="w", limit=10, now=utc_now(), lease_seconds=30)
    assert [record.id for record in claimed] == [first.id, last.id]
    stored = await backend.get(broken.id)
    assert stored is not None and stored.status is TaskStatus.FAILED
    assert stored.error is not None and stored.error.type == UNDECODABLE
    assert f"record {broken.id} cannot be decoded: stored field {column!r}" in stored.error.message
    page = await backend.query(RecordFilter(queue="q"), limit=10)
    assert {record.id for record in page.records} == {first.id, broken.id, last.id}


async def test_sqlite_keeps_text_in_an_integer_column_and_it_is_named(make_factory: Callable[..., Any]) -> None:
    backend: AdvancedAlchemyBackend = await make_factory("aiosqlite").open()
    records = _records(2)
    await backend.enqueue(records)
    await _damage(backend, records[0].id, "priority", "high")
    claimed = await backend.claim(["q"], owner="w", limit=10, now=utc_now(), lease_seconds=30)
    assert [record.id for record in claimed] == [records[1].id], "no sort over the batch failed on the text"
    stored = await backend.get(records[0].id)
    assert stored is not None and stored.error is not None and "stored field 'priority'" in stored.error.message


async def test_a_status_nobody_knows_is_set_aside(driver: str, make_factory: Callable[..., Any]) -> None:
    backend: AdvancedAlchemyBackend = await make_factory(driver).open()
    (record,) = _records(1)
    await backend.enqueue([record])
    await _damage(backend, record.id, "status", "bogus")
    now = utc_now()
    assert await backend.claim(["q"], owner="w", limit=10, now=now, lease_seconds=30) == []
    stored = await backend.get(record.id)
    assert stored is not None and stored.status is TaskStatus.FAILED  # shown as failed: nothing acts on it
    assert stored.error is not None and "stored field 'status'" in stored.error.message
    cancelled = await backend.cancel(record.id, now=now)
    assert cancelled is not None and cancelled.id == record.id

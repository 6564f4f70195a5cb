"""Queries: filters, newest-first order and cursor pagination."""

from __future__ import annotations

from datetime import datetime

import pytest

from litestar_queues.backend import QueueBackend
from litestar_queues.records import RecordFilter, TaskRecord, TaskStatus
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import claim_one, make_record, rule

__all__ = ("QueryConformance",)


async def _all_pages(backend: QueueBackend, where: RecordFilter, limit: int) -> list[list[TaskRecord]]:
    pages: list[list[TaskRecord]] = []
    cursor: str | None = None
    for _ in range(1000):  # bounded: a cursor that never ends must fail, not hang
        page = await backend.query(where, limit=limit, cursor=cursor)
        assert len(page.records) <= limit, rule("query", "at most limit per page", f"got {len(page.records)}")
        pages.append(page.records)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor
    pytest.fail(rule("query", "iterating pages visits every matching record exactly once", "the cursor never ended"))


class QueryConformance(ConformanceBase):
    """``query`` filters records and pages through them newest first."""

    async def test_query_returns_records_newest_first(self, backend: QueueBackend, now: datetime) -> None:
        records = [make_record(now) for _ in range(6)]
        await backend.enqueue(records[::-1])
        page = await backend.query(RecordFilter(), limit=10)
        assert [record.id for record in page.records] == sorted((record.id for record in records), reverse=True), rule(
            "query", "return records matching where, newest first (id descending)"
        )
        assert page.records[0] == max(records, key=lambda record: record.id), rule("query", "return the records")
        assert page.next_cursor is None, rule("query", "next_cursor is None after the last page")

    @pytest.mark.parametrize(
        "where",
        [
            RecordFilter(status=TaskStatus.RUNNING),
            RecordFilter(queue="other"),
            RecordFilter(task_name="conformance.special"),
            RecordFilter(status=TaskStatus.PENDING, queue="other"),
            RecordFilter(status=TaskStatus.PENDING, queue="other", task_name="conformance.special"),
        ],
        ids=["status", "queue", "task_name", "status+queue", "all three"],
    )
    async def test_query_filters_by_status_queue_and_task_name(
        self, backend: QueueBackend, now: datetime, where: RecordFilter
    ) -> None:
        await backend.enqueue(
            [
                make_record(now, queue=queue, task_name=task_name)
                for queue in ("conformance", "other")
                for task_name in ("conformance.noop", "conformance.special")
                for _ in range(2)
            ]
        )
        await claim_one(backend, now)
        everything = (await backend.query(RecordFilter(), limit=100)).records
        expected = [
            record.id
            for record in everything
            if (where.status is None or record.status == where.status)
            and (where.queue is None or record.queue == where.queue)
            and (where.task_name is None or record.task_name == where.task_name)
        ]
        page = await backend.query(where, limit=100)
        assert [record.id for record in page.records] == expected, rule(
            "query", "return records matching where (None means any)", f"filter {where!r}"
        )
        assert expected, "the filter should match something"

    @pytest.mark.parametrize("limit", [1, 4, 7, 25])
    async def test_query_pages_visit_every_record_exactly_once(
        self, backend: QueueBackend, now: datetime, limit: int
    ) -> None:
        records = [make_record(now, task_name="conformance.paged" if number % 3 else "x") for number in range(25)]
        await backend.enqueue(records)
        where = RecordFilter(task_name="conformance.paged")
        pages = await _all_pages(backend, where, limit)
        visited = [record.id for page in pages for record in page]
        expected = sorted((record.id for record in records if record.task_name == "conformance.paged"), reverse=True)
        assert visited == expected, rule(
            "query",
            "iterating pages visits every matching record exactly once, newest first",
            f"visited {len(visited)} ids ({len(set(visited))} distinct) of {len(expected)}",
        )

    async def test_query_of_nothing_returns_an_empty_last_page(self, backend: QueueBackend) -> None:
        page = await backend.query(RecordFilter(), limit=10)
        assert (page.records, page.next_cursor) == ([], None), rule("query", "no records: an empty last page")

"""Queries: filters, newest-first order and cursor pagination."""

from __future__ import annotations

from datetime import datetime

import pytest

from litestar_queues.backend import QueueBackend
from litestar_queues.records import RecordFilter, TaskRecord, TaskStatus
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import LEASE_SECONDS, OWNER, completed, make_record, rule

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
            RecordFilter(queue="beta"),
            RecordFilter(task_name="conformance.two"),
            RecordFilter(status=TaskStatus.RUNNING, queue="beta"),
            RecordFilter(status=TaskStatus.COMPLETED, task_name="conformance.two"),
            RecordFilter(queue="beta", task_name="conformance.one"),
            RecordFilter(status=TaskStatus.PENDING, queue="alpha", task_name="conformance.two"),
        ],
        ids=["status", "queue", "task_name", "status+queue", "status+task_name", "queue+task_name", "all three"],
    )
    async def test_query_filters_by_every_field_it_sets(
        self, backend: QueueBackend, now: datetime, where: RecordFilter
    ) -> None:
        # One record for each status x queue x task name: dropping any field of the filter, or or-ing them,
        # selects more records than the filter does.
        cube = [
            (status, make_record(now, queue=queue, task_name=task_name))
            for status in (TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.COMPLETED)
            for queue in ("alpha", "beta")
            for task_name in ("conformance.one", "conformance.two")
        ]
        await backend.enqueue([record for _, record in cube][::-1])
        for status, record in cube:
            if status is not TaskStatus.PENDING:
                running = await backend.claim_record(record.id, owner=OWNER, now=now, lease_seconds=LEASE_SECONDS)
                assert running is not None, rule("claim_record", "claim one specific pending record")
                if status is TaskStatus.COMPLETED:
                    await backend.finish(running.lease, completed(), now=now)
        expected = sorted(
            (
                record.id
                for status, record in cube
                if where.status in (None, status)
                and where.queue in (None, record.queue)
                and where.task_name in (None, record.task_name)
            ),
            reverse=True,
        )
        page = await backend.query(where, limit=100)
        assert [record.id for record in page.records] == expected, rule(
            "query",
            "a record matches when it has every field where sets (None means any), newest first",
            f"filter {where!r}: expected {len(expected)} records, got {len(page.records)}",
        )

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

    @pytest.mark.parametrize("limit", [0, -1])
    async def test_query_with_limit_below_one_returns_an_empty_last_page(
        self, backend: QueueBackend, now: datetime, limit: int
    ) -> None:
        await backend.enqueue([make_record(now) for _ in range(3)])
        page = await backend.query(RecordFilter(), limit=limit)
        assert (page.records, page.next_cursor) == ([], None), rule(
            "query", "limit <= 0 selects nothing: an empty last page", f"limit={limit}: {len(page.records)} records"
        )

    async def test_query_of_nothing_returns_an_empty_last_page(self, backend: QueueBackend) -> None:
        page = await backend.query(RecordFilter(), limit=10)
        assert (page.records, page.next_cursor) == ([], None), rule("query", "no records: an empty last page")

"""Statistics: counts by status and the oldest due pending record."""

from __future__ import annotations

from datetime import datetime

from litestar_queues.backend import QueueBackend
from litestar_queues.records import TaskStatus
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    after,
    claim_one,
    completed,
    make_record,
    rule,
)

__all__ = ("StatisticsConformance",)


class StatisticsConformance(ConformanceBase):
    """``statistics`` counts every status and finds the oldest due pending record, per queue or overall."""

    async def test_statistics_of_empty_storage_lists_every_status(self, backend: QueueBackend, now: datetime) -> None:
        stats = await backend.statistics(now=now)
        assert stats.counts == dict.fromkeys(TaskStatus, 0), rule(
            "statistics", "count records by status (every status present)", repr(stats.counts)
        )
        assert (stats.oldest_pending_at, stats.queue) == (None, None), rule(
            "statistics", "nothing pending", repr(stats)
        )

    async def test_statistics_counts_records_by_status(self, backend: QueueBackend, now: datetime) -> None:
        await backend.enqueue([make_record(now, expires_at=after(now, 10)) for _ in range(6)])
        await claim_one(backend, now)  # running
        done = await claim_one(backend, now)
        await backend.finish(done.lease, completed(), now=now)
        cancelled = await claim_one(backend, now)
        await backend.cancel(cancelled.id, now=now)  # still running: cancel only requested
        await backend.expire(now=after(now, 10), limit=1)
        stats = await backend.statistics(now=now)
        expected = dict.fromkeys(TaskStatus, 0) | {
            TaskStatus.PENDING: 2,
            TaskStatus.RUNNING: 2,
            TaskStatus.COMPLETED: 1,
            TaskStatus.EXPIRED: 1,
        }
        assert stats.counts == expected, rule("statistics", "count records by status", repr(stats.counts))

    async def test_statistics_finds_the_oldest_due_pending_record(self, backend: QueueBackend, now: datetime) -> None:
        await backend.enqueue(
            [
                make_record(now, scheduled_at=after(now, -600), priority=-5),
                make_record(now, scheduled_at=after(now, -300), priority=5),
                make_record(now, scheduled_at=after(now, 300)),  # not due
                make_record(now, scheduled_at=after(now, -1200), expires_at=after(now, -1)),  # expired: not due
            ]
        )
        stats = await backend.statistics(now=now)
        assert stats.oldest_pending_at == after(now, -600), rule(
            "statistics",
            "find the oldest due pending record (due: scheduled_at <= now and not expired)",
            f"got {stats.oldest_pending_at!r}, expected {after(now, -600)!r}",
        )
        assert stats.oldest_pending_age(now) == 600.0, rule("statistics", "the age of the oldest due pending record")

    async def test_statistics_ignores_running_records_for_the_oldest_pending(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        await backend.enqueue([make_record(now, scheduled_at=after(now, -60))])
        await claim_one(backend, now)
        assert (await backend.statistics(now=now)).oldest_pending_at is None, rule(
            "statistics", "the oldest due *pending* record"
        )

    async def test_statistics_of_one_queue_counts_only_that_queue(self, backend: QueueBackend, now: datetime) -> None:
        await backend.enqueue(
            [
                make_record(now, queue="alpha", scheduled_at=after(now, -30)),
                make_record(now, queue="alpha", scheduled_at=after(now, -10)),
                make_record(now, queue="beta", scheduled_at=after(now, -90)),
            ]
        )
        alpha = await backend.statistics(now=now, queue="alpha")
        assert (alpha.queue, alpha.counts[TaskStatus.PENDING], alpha.oldest_pending_at) == (
            "alpha",
            2,
            after(now, -30),
        ), rule("statistics", "for one queue", repr(alpha))
        overall = await backend.statistics(now=now)
        assert (overall.queue, overall.counts[TaskStatus.PENDING], overall.oldest_pending_at) == (
            None,
            3,
            after(now, -90),
        ), rule("statistics", "or all queues when None", repr(overall))
        unknown = await backend.statistics(now=now, queue="gamma")
        assert unknown.counts == dict.fromkeys(TaskStatus, 0) and unknown.oldest_pending_at is None, rule(
            "statistics", "every status present (zero when empty)", repr(unknown)
        )

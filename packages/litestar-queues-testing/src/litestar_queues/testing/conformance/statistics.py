"""Statistics: counts by status and the oldest due pending record."""

from __future__ import annotations

from datetime import datetime

import pytest

from litestar_queues.backend import QueueBackend
from litestar_queues.records import Outcome, RecordFilter, TaskError, TaskStatus
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    LEASE_SECONDS,
    OWNER,
    after,
    claim_one,
    make_record,
    rule,
)

__all__ = ("StatisticsConformance",)


def _counts(**counts: int) -> dict[TaskStatus, int]:
    return {status: counts.get(status.value, 0) for status in TaskStatus}


def _named(counts: dict[TaskStatus, int]) -> dict[str, int]:
    return {TaskStatus(status).value: count for status, count in counts.items()}


async def _populate(backend: QueueBackend, now: datetime, queue: str, counts: dict[TaskStatus, int]) -> None:
    """Bring ``counts[status]`` records of ``queue`` to each status through the transitions (expired ones at
    ``expire(now + 1 s)``, left to the caller)."""
    plan = [status for status in TaskStatus for _ in range(counts[status])]
    records = [
        make_record(now, queue=queue, expires_at=after(now, 1) if status is TaskStatus.EXPIRED else None)
        for status in plan
    ]
    await backend.enqueue(records)
    for status, record in zip(plan, records, strict=True):
        if status is TaskStatus.CANCELLED:
            await backend.cancel(record.id, now=now)
        elif status in (TaskStatus.RUNNING, TaskStatus.COMPLETED, TaskStatus.FAILED):
            running = await backend.claim_record(record.id, owner=OWNER, now=now, lease_seconds=LEASE_SECONDS)
            assert running is not None, rule("claim_record", "claim one specific pending record")
            if status is not TaskStatus.RUNNING:
                error = TaskError(type="builtins.RuntimeError", message="x") if status is TaskStatus.FAILED else None
                await backend.finish(running.lease, Outcome(status=status, error=error), now=now)


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

    async def test_statistics_counts_every_status_per_queue_and_overall(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        # A different count for every status and queue: a status counted as another, or a queue counted into
        # another, changes the numbers.
        alpha = _counts(pending=1, running=2, completed=3, failed=4, cancelled=5, expired=6)
        beta = _counts(pending=3, running=1, failed=2, expired=1)
        await _populate(backend, now, "alpha", alpha)
        await _populate(backend, now, "beta", beta)
        assert (
            await backend.expire(now=after(now, 1), limit=100) == alpha[TaskStatus.EXPIRED] + beta[TaskStatus.EXPIRED]
        ), rule("expire", "mark up to limit pending records with expires_at <= now; return how many")
        for queue, expected in [("alpha", alpha), ("beta", beta), (None, {s: alpha[s] + beta[s] for s in TaskStatus})]:
            stats = await backend.statistics(now=now, queue=queue)
            assert (stats.queue, stats.counts) == (queue, expected), rule(
                "statistics",
                "count records by status (every status present), for one queue or all queues when None",
                f"queue={queue!r}: expected {_named(expected)}, got queue={stats.queue!r} {_named(stats.counts)}",
            )

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

    @pytest.mark.parametrize("only", ["delayed", "expired", "running"])
    async def test_statistics_with_nothing_due_has_no_oldest_pending(
        self, backend: QueueBackend, now: datetime, only: str
    ) -> None:
        if only == "running":
            await backend.enqueue([make_record(now, scheduled_at=after(now, -60)) for _ in range(2)])
            await claim_one(backend, now)
            await claim_one(backend, now)
        else:
            # Delayed: due in a minute and in an hour. Expired: due long ago, expired a second ago.
            await backend.enqueue(
                [
                    make_record(now, scheduled_at=after(now, 60)),
                    make_record(now, scheduled_at=after(now, 3600), priority=5),
                ]
                if only == "delayed"
                else [make_record(now, scheduled_at=after(now, -600), expires_at=after(now, -1)) for _ in range(2)]
            )
        stats = await backend.statistics(now=now)
        assert stats.oldest_pending_at is None, rule(
            "statistics",
            "oldest_pending_at is the smallest scheduled_at of the records due at now, or None when no record is "
            "due: delayed, expired and running records never count, even when they are all there is",
            f"only {only} records: got {stats.oldest_pending_at!r}",
        )
        assert stats.counts[TaskStatus.RUNNING if only == "running" else TaskStatus.PENDING] == 2, rule(
            "statistics", "count records by status", repr(stats.counts)
        )

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

    @pytest.mark.parametrize("bulk", [False, True], ids=["one-by-one", "one-call"])
    async def test_a_queue_known_only_from_records_stored_ended_counts_over_all_queues(
        self, backend: QueueBackend, now: datetime, bulk: bool
    ) -> None:
        # enqueue stores a record exactly as given, in any status: a queue whose records never were pending must still
        # be counted and listed over all queues (a backend that learns its queues from pending work misses it).
        records = [
            make_record(now, queue="ended", status=status, finished_at=now)
            for status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.COMPLETED)
        ]
        if bulk:
            await backend.enqueue(records)
        else:
            for record in records:
                await backend.enqueue([record])
        expected = _counts(completed=2, failed=1)
        stats = await backend.statistics(now=now)
        assert stats.counts == expected, rule(
            "statistics",
            "count records by status for all queues when None",
            f"records stored completed and failed: expected {_named(expected)}, got {_named(stats.counts)}",
        )
        page = await backend.query(RecordFilter(), limit=10)
        assert sorted(record.id for record in page.records) == sorted(record.id for record in records), rule(
            "query", "every record when the filter is empty", repr(page)
        )

    @pytest.mark.parametrize("count_limit", [0, 2, 4])
    async def test_statistics_with_a_count_limit_caps_each_count_just_above_it(
        self, backend: QueueBackend, now: datetime, count_limit: int
    ) -> None:
        # Counts on both sides of every limit, one status exactly at 2 and one at 4: a cap off by one, a cap of
        # the total instead of each status, a cap of one queue leaking into another, or no cap, show.
        alpha = _counts(pending=3, running=1, completed=5, failed=2, cancelled=4, expired=0)
        beta = _counts(completed=2, failed=1)
        await _populate(backend, now, "alpha", alpha)
        await _populate(backend, now, "beta", beta)
        for queue, exact in [("alpha", alpha), ("beta", beta), (None, {s: alpha[s] + beta[s] for s in TaskStatus})]:
            expected = {status: min(count, count_limit + 1) for status, count in exact.items()}
            stats = await backend.statistics(now=now, queue=queue, count_limit=count_limit)
            assert stats.counts == expected, rule(
                "statistics",
                "a status with more than count_limit records is reported as exactly count_limit + 1; a count up to "
                "count_limit is exact",
                f"queue={queue!r} count_limit={count_limit}: expected {_named(expected)}, got {_named(stats.counts)}",
            )
            assert stats.oldest_pending_at == (now if exact[TaskStatus.PENDING] else None), rule(
                "statistics", "count_limit changes no oldest_pending_at", repr(stats)
            )
        uncapped = await backend.statistics(now=now, queue="alpha", count_limit=None)
        assert uncapped.counts == alpha, rule("statistics", "None counts everything", repr(_named(uncapped.counts)))

"""Claiming: the transition, due order, and what is never claimed."""

from __future__ import annotations

import random
from datetime import datetime

import pytest

from litestar_queues.backend import QueueBackend
from litestar_queues.records import TaskRecord, TaskStatus, new_record_id
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    LEASE_SECONDS,
    OWNER,
    QUEUE,
    after,
    claim_one,
    claimed_state,
    completed,
    diff,
    enqueue_one,
    make_record,
    rule,
)

__all__ = ("ClaimConformance",)

_ORDER = "due order: priority descending, then scheduled_at ascending, then id ascending"


async def _claim_ids(
    backend: QueueBackend, now: datetime, *, queues: list[str] | None = None, limit: int = 100
) -> list[str]:
    claimed = await backend.claim(queues or [QUEUE], owner=OWNER, limit=limit, now=now, lease_seconds=LEASE_SECONDS)
    return [record.id for record in claimed]


async def _enqueue_shuffled(backend: QueueBackend, records: list[TaskRecord]) -> None:
    shuffled = list(records)
    random.Random(3).shuffle(shuffled)
    outcomes = await backend.enqueue(shuffled)
    assert all(outcome.created for outcome in outcomes), rule("enqueue", "new records are stored, created=True")


class ClaimConformance(ConformanceBase):
    """``claim`` takes due records in due order and makes them running; ``claim_record`` takes one by id."""

    async def test_claim_makes_the_record_running_under_a_new_lease(self, backend: QueueBackend, now: datetime) -> None:
        record = await enqueue_one(backend, make_record(now, token=4, attempts=1))
        claimed = await claim_one(backend, after(now, 1), owner="worker-z", lease_seconds=45)
        expected = claimed_state(record, owner="worker-z", now=after(now, 1), lease_seconds=45)
        assert claimed == expected, rule(
            "claim",
            "each claimed record becomes running with owner, token + 1, attempts + 1, started_at = now and "
            "lease_expires_at = now + lease_seconds",
            diff(expected, claimed),
        )
        stored = await backend.get(record.id)
        assert stored == expected, rule("claim", "the claim is stored", diff(expected, stored))

    async def test_claim_orders_by_priority_descending(self, backend: QueueBackend, now: datetime) -> None:
        records = [make_record(now, priority=priority) for priority in (0, 5, -3, 10, 1)]
        await _enqueue_shuffled(backend, records)
        expected = [record.id for record in sorted(records, key=lambda record: -record.priority)]
        assert await _claim_ids(backend, now) == expected, rule("claim", _ORDER)

    async def test_claim_orders_equal_priorities_by_scheduled_at(self, backend: QueueBackend, now: datetime) -> None:
        records = [make_record(now, scheduled_at=after(now, -offset)) for offset in (5, 60, 1, 3600, 30)]
        await _enqueue_shuffled(backend, records)
        expected = [record.id for record in sorted(records, key=lambda record: record.scheduled_at)]
        assert await _claim_ids(backend, now) == expected, rule("claim", _ORDER)

    async def test_claim_orders_equal_priority_and_time_by_id(self, backend: QueueBackend, now: datetime) -> None:
        records = [make_record(now) for _ in range(10)]
        await _enqueue_shuffled(backend, records)
        assert await _claim_ids(backend, now) == sorted(record.id for record in records), rule(
            "claim", _ORDER + " (FIFO among equals)"
        )

    async def test_claim_orders_mixed_records_by_priority_then_time_then_id(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        records = [
            make_record(now, priority=priority, scheduled_at=after(now, -offset))
            for priority in (1, 0, 2)
            for offset in (10, 0, 10, 20)
        ]
        await _enqueue_shuffled(backend, records)
        expected = sorted(records, key=lambda record: (-record.priority, record.scheduled_at, record.id))
        claimed: list[str] = []
        for _ in range(4):  # in batches: the order holds across claims too
            claimed += await _claim_ids(backend, now, limit=3)
        assert claimed == [record.id for record in expected], rule("claim", _ORDER)

    async def test_claim_never_returns_records_not_yet_due(self, backend: QueueBackend, now: datetime) -> None:
        delayed = await enqueue_one(backend, make_record(now, scheduled_at=after(now, 3600), priority=100))
        due = await enqueue_one(backend, make_record(now))
        assert await _claim_ids(backend, now) == [due.id], rule(
            "claim", "records not yet due are never returned (due: scheduled_at <= now)"
        )
        assert await _claim_ids(backend, after(now, 3599)) == [], rule(
            "claim", "records not yet due are never returned"
        )
        assert await _claim_ids(backend, after(now, 3600)) == [delayed.id], rule(
            "claim", "a record is due when scheduled_at <= now (inclusive)"
        )

    async def test_claim_prefers_a_due_record_to_a_higher_priority_delayed_one(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        await enqueue_one(backend, make_record(now, scheduled_at=after(now, 1), priority=9))
        due = await enqueue_one(backend, make_record(now, priority=0))
        assert await _claim_ids(backend, now, limit=1) == [due.id], rule("claim", "due first, then priority")

    async def test_claim_never_returns_expired_records(self, backend: QueueBackend, now: datetime) -> None:
        expired = await enqueue_one(backend, make_record(now, expires_at=now, priority=5))
        live = await enqueue_one(backend, make_record(now, expires_at=after(now, 1)))
        assert await _claim_ids(backend, now) == [live.id], rule(
            "claim", "expired records are never returned (due needs expires_at None or > now)"
        )
        stored = await backend.get(expired.id)
        assert stored is not None and stored.status is TaskStatus.PENDING, rule(
            "claim", "claim leaves an expired record alone (expire() is what marks it)", repr(stored)
        )

    async def test_claim_takes_only_the_requested_queues(self, backend: QueueBackend, now: datetime) -> None:
        mine = await enqueue_one(backend, make_record(now, queue="mine"))
        await enqueue_one(backend, make_record(now, queue="theirs"))
        assert await _claim_ids(backend, now, queues=["mine"]) == [mine.id], rule(
            "claim", "records of other queues are never returned"
        )
        assert await _claim_ids(backend, now, queues=["nobody"]) == [], rule("claim", "an unknown queue has no records")

    async def test_claim_merges_several_queues_in_due_order(self, backend: QueueBackend, now: datetime) -> None:
        records = [
            make_record(now, queue=queue, priority=priority, scheduled_at=after(now, -offset))
            for queue, priority, offset in [("a", 0, 5), ("b", 3, 1), ("a", 3, 2), ("c", 0, 9), ("b", 0, 7)]
        ]
        await _enqueue_shuffled(backend, records)
        expected = sorted(records, key=lambda record: (-record.priority, record.scheduled_at, record.id))
        assert await _claim_ids(backend, now, queues=["a", "b", "c"]) == [record.id for record in expected], rule(
            "claim", _ORDER + ", across all requested queues"
        )

    @pytest.mark.parametrize("limit", [1, 3, 7])
    async def test_claim_returns_at_most_limit_records(self, backend: QueueBackend, now: datetime, limit: int) -> None:
        await backend.enqueue([make_record(now) for _ in range(5)])
        claimed = await _claim_ids(backend, now, limit=limit)
        assert len(claimed) == min(limit, 5), rule("claim", "claim up to limit due records", f"got {len(claimed)}")

    @pytest.mark.parametrize("limit", [0, -1])
    async def test_claim_with_limit_below_one_returns_nothing(
        self, backend: QueueBackend, now: datetime, limit: int
    ) -> None:
        # Several due records: `due[:limit]` keeps all but the last one at -1, SQLite's LIMIT -1 means no limit.
        records = [make_record(now) for _ in range(3)]
        await backend.enqueue(records)
        claimed = await _claim_ids(backend, now, limit=limit)
        assert claimed == [], rule("claim", "limit <= 0 returns []", f"limit={limit} claimed {len(claimed)} of 3")
        for record in records:
            assert await backend.get(record.id) == record, rule("claim", "limit <= 0 changes nothing")

    async def test_claim_never_returns_running_or_terminal_records(self, backend: QueueBackend, now: datetime) -> None:
        await backend.enqueue([make_record(now) for _ in range(3)])
        running = await claim_one(backend, now)
        finished = await claim_one(backend, now)
        await backend.finish(finished.lease, completed(), now=now)
        remaining = await _claim_ids(backend, after(now, 3600))
        assert running.id not in remaining and finished.id not in remaining and len(remaining) == 1, rule(
            "claim", "only pending records are due", f"claimed {remaining}"
        )

    async def test_claim_record_claims_a_pending_record_before_it_is_due(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        record = await enqueue_one(backend, make_record(now, scheduled_at=after(now, 3600)))
        claimed = await backend.claim_record(record.id, owner=OWNER, now=now, lease_seconds=LEASE_SECONDS)
        expected = claimed_state(record, owner=OWNER, now=now, lease_seconds=LEASE_SECONDS)
        assert claimed == expected, rule(
            "claim_record",
            "claim one specific pending record whatever its scheduled_at; same transition as claim",
            diff(expected, claimed),
        )

    async def test_claim_record_refuses_a_record_that_is_not_pending(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        claimed = await backend.claim_record(running.id, owner="worker-b", now=now, lease_seconds=LEASE_SECONDS)
        assert claimed is None, rule("claim_record", "returns None (changing nothing) if the record is not pending")
        assert await backend.get(running.id) == running, rule("claim_record", "changing nothing")
        cancelled = await enqueue_one(backend, make_record(now, scheduled_at=after(now, 60)))
        await backend.cancel(cancelled.id, now=now)
        ended = await backend.get(cancelled.id)
        claimed = await backend.claim_record(cancelled.id, owner="worker-b", now=now, lease_seconds=LEASE_SECONDS)
        assert claimed is None, rule("claim_record", "returns None (changing nothing) if the record is not pending")
        assert await backend.get(cancelled.id) == ended, rule("claim_record", "changing nothing")
        missing = await backend.claim_record(new_record_id(), owner=OWNER, now=now, lease_seconds=LEASE_SECONDS)
        assert missing is None, rule("claim_record", "returns None if the record does not exist")

    async def test_claim_record_is_not_claimed_again_by_claim(self, backend: QueueBackend, now: datetime) -> None:
        record = await enqueue_one(backend, make_record(now))
        await backend.claim_record(record.id, owner=OWNER, now=now, lease_seconds=LEASE_SECONDS)
        assert await _claim_ids(backend, now) == [], rule("claim", "no record is ever returned to two claimers")

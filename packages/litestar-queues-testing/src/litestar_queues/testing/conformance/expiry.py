"""Expiry: pending records that were not started before ``expires_at``."""

from __future__ import annotations

from datetime import datetime

import pytest
from msgspec.structs import replace

from litestar_queues.backend import QueueBackend
from litestar_queues.records import TaskStatus
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    LEASE_SECONDS,
    OWNER,
    QUEUE,
    after,
    claim_one,
    diff,
    enqueue_one,
    make_record,
    retry_at,
    rule,
)

__all__ = ("ExpiryConformance",)


class ExpiryConformance(ConformanceBase):
    """``expire`` ends pending records past ``expires_at``; ``claim`` skips them even before that."""

    async def test_expire_marks_pending_records_past_expiry(self, backend: QueueBackend, now: datetime) -> None:
        record = await enqueue_one(backend, make_record(now, key="expire:key", expires_at=after(now, 60)))
        assert await backend.expire(now=after(now, 59), limit=10) == 0, rule(
            "expire", "mark pending records with expires_at <= now", "a record expiring later was counted"
        )
        assert await backend.expire(now=after(now, 60), limit=10) == 1, rule(
            "expire", "mark pending records with expires_at <= now as expired; return how many"
        )
        expected = replace(record, status=TaskStatus.EXPIRED, finished_at=after(now, 60))
        stored = await backend.get(record.id)
        assert stored == expected, rule("expire", "expired records get finished_at = now", diff(expected, stored))
        (outcome,) = await backend.enqueue([make_record(now, key="expire:key")])
        assert outcome.created, rule("expire", "expired records free their key")

    async def test_expire_marks_at_most_limit_records(self, backend: QueueBackend, now: datetime) -> None:
        records = [make_record(now, expires_at=after(now, offset)) for offset in range(1, 6)]
        await backend.enqueue(records)
        assert await backend.expire(now=after(now, 10), limit=3) == 3, rule("expire", "mark up to limit records")
        statuses = [stored.status for stored in [await backend.get(record.id) for record in records] if stored]
        assert statuses.count(TaskStatus.EXPIRED) == 3, rule("expire", "return how many were marked", repr(statuses))
        assert await backend.expire(now=after(now, 10), limit=10) == 2, rule("expire", "the rest on the next call")

    @pytest.mark.parametrize("limit", [0, -1])
    async def test_expire_with_limit_below_one_marks_nothing(
        self, backend: QueueBackend, now: datetime, limit: int
    ) -> None:
        records = [make_record(now, expires_at=after(now, 1)) for _ in range(3)]
        await backend.enqueue(records)
        assert await backend.expire(now=after(now, 10), limit=limit) == 0, rule(
            "expire", "limit <= 0 selects nothing: return 0"
        )
        for record in records:
            assert await backend.get(record.id) == record, rule("expire", "limit <= 0 changes nothing")

    async def test_expire_marks_a_record_waiting_for_a_retry(self, backend: QueueBackend, now: datetime) -> None:
        await enqueue_one(backend, make_record(now, expires_at=after(now, 60)))
        running = await claim_one(backend, now)
        retrying = await backend.finish(running.lease, retry_at(after(now, 120)), now=after(now, 1))
        assert retrying is not None, rule("finish", "a matching fence: the updated record")
        assert await backend.expire(now=after(now, 60), limit=10) == 1, rule(
            "expire",
            "mark pending records with expires_at <= now: a record waiting for a retry is pending too",
            "a record that had run an attempt was not expired",
        )
        expected = replace(retrying, status=TaskStatus.EXPIRED, finished_at=after(now, 60))
        stored = await backend.get(running.id)
        assert stored == expected, rule("expire", "expired records get finished_at = now", diff(expected, stored))

    async def test_expire_leaves_running_and_unexpiring_records_alone(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        await enqueue_one(backend, make_record(now, expires_at=after(now, 5)))
        running = await claim_one(backend, now)
        forever = await enqueue_one(backend, make_record(now))
        assert await backend.expire(now=after(now, 3600), limit=10) == 0, rule(
            "expire", "only pending records with expires_at <= now are marked"
        )
        assert await backend.get(running.id) == running, rule("expire", "a running record never expires")
        assert await backend.get(forever.id) == forever, rule("expire", "a record without expires_at never expires")

    async def test_expire_skips_claim_even_before_expire_runs(self, backend: QueueBackend, now: datetime) -> None:
        record = await enqueue_one(backend, make_record(now, expires_at=after(now, 10)))
        claimed = await backend.claim([QUEUE], owner=OWNER, limit=5, now=after(now, 10), lease_seconds=LEASE_SECONDS)
        assert claimed == [], rule("claim", "expired records are never returned (expires_at <= now)")
        assert await backend.get(record.id) == record, rule("claim", "claim does not change an expired record")

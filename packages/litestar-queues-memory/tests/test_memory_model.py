"""Random operations checked against a brute-force reading of the stored records.

The memory backend answers ``claim``, ``statistics``, ``expire`` and ``expired_leases`` from lazily
maintained heaps; here every answer is recomputed from all records (via ``query``) and compared,
while ``now`` jumps forwards and backwards.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from litestar_queues.backends.memory import MemoryBackend
from litestar_queues.clock import utc_now
from litestar_queues.errors import DuplicateTaskError
from litestar_queues.records import (
    TERMINAL_STATUSES,
    Outcome,
    RecordFilter,
    TaskRecord,
    TaskStatus,
    new_record_id,
)

pytestmark = pytest.mark.anyio

_QUEUES = ("a", "b", "c")


async def _everything(backend: MemoryBackend) -> list[TaskRecord]:
    return (await backend.query(RecordFilter(), limit=1_000_000)).records


def _due(record: TaskRecord, now: datetime) -> bool:
    return (
        record.status is TaskStatus.PENDING
        and record.scheduled_at <= now
        and (record.expires_at is None or record.expires_at > now)
    )


class _Run:
    def __init__(self, backend: MemoryBackend, seed: int) -> None:
        self.backend = backend
        self.random = random.Random(seed)
        self.start = utc_now()

    def moment(self, low: int, high: int) -> datetime:
        return self.start + timedelta(seconds=self.random.randint(low, high))

    async def enqueue(self) -> None:
        records = [
            TaskRecord(
                id=new_record_id(),
                task_name="t",
                queue=self.random.choice(_QUEUES),
                priority=self.random.choice((-1, 0, 0, 1, 2)),
                key=self.random.choice((None, None, "k1", "k2", "k3")),
                created_at=self.start,
                scheduled_at=self.moment(-60, 60),
                expires_at=self.random.choice((None, None, self.moment(-30, 90))),
            )
            for _ in range(self.random.randint(1, 5))
        ]
        await self.backend.enqueue(records)

    async def claim(self) -> None:
        now = self.moment(-60, 120)
        queues = self.random.sample(_QUEUES, self.random.randint(1, 3))
        limit = self.random.randint(1, 6)
        expected = sorted(
            (record for record in await _everything(self.backend) if record.queue in queues and _due(record, now)),
            key=lambda record: (-record.priority, record.scheduled_at, record.id),
        )[:limit]
        claimed = await self.backend.claim(queues, owner="w", limit=limit, now=now, lease_seconds=30)
        assert [record.id for record in claimed] == [record.id for record in expected]

    async def finish(self) -> None:
        running = [record for record in await _everything(self.backend) if record.status is TaskStatus.RUNNING]
        if not running:
            return
        record = self.random.choice(running)
        if self.random.random() < 0.5:
            scheduled_at = self.random.choice((record.scheduled_at, self.moment(-10, 60)))
            outcome = Outcome(status=TaskStatus.PENDING, scheduled_at=scheduled_at, refund_attempt=True)
        else:
            outcome = Outcome(status=self.random.choice((TaskStatus.COMPLETED, TaskStatus.FAILED)))
        assert await self.backend.finish(record.lease, outcome, now=self.moment(0, 60)) is not None

    async def cancel_or_requeue(self) -> None:
        records = await _everything(self.backend)
        if not records:
            return
        record = self.random.choice(records)
        if record.status in TERMINAL_STATUSES:
            try:
                await self.backend.requeue(record.id, now=self.moment(-30, 30))
            except DuplicateTaskError:
                assert record.key is not None
        else:
            await self.backend.cancel(record.id, now=self.moment(0, 60))

    async def expire(self) -> None:
        now = self.moment(-30, 90)
        limit = self.random.randint(1, 4)
        candidates = {
            record.id
            for record in await _everything(self.backend)
            if record.status is TaskStatus.PENDING and record.expires_at is not None and record.expires_at <= now
        }
        pending = {record.id for record in await _everything(self.backend) if record.status is TaskStatus.PENDING}
        count = await self.backend.expire(now=now, limit=limit)
        still_pending = {r.id for r in await _everything(self.backend) if r.status is TaskStatus.PENDING}
        assert count == min(limit, len(candidates)) == len(pending - still_pending)
        assert pending - still_pending <= candidates

    async def statistics(self) -> None:
        now = self.moment(-60, 120)
        queue = self.random.choice((None, *_QUEUES))
        records = [record for record in await _everything(self.backend) if queue in {None, record.queue}]
        due = [record.scheduled_at for record in records if _due(record, now)]
        stats = await self.backend.statistics(now=now, queue=queue)
        assert stats.oldest_pending_at == (min(due) if due else None)
        assert stats.counts == {status: sum(r.status is status for r in records) for status in TaskStatus}

    async def expired_leases(self) -> None:
        now = self.moment(0, 150)
        expected = {
            record.id
            for record in await _everything(self.backend)
            if record.status is TaskStatus.RUNNING
            and record.lease_expires_at is not None
            and record.lease_expires_at <= now
        }
        assert {record.id for record in await self.backend.expired_leases(now=now, limit=10_000)} == expected

    async def renew(self) -> None:
        running = [record for record in await _everything(self.backend) if record.status is TaskStatus.RUNNING]
        if running:
            await self.backend.renew([record.lease for record in running], now=self.moment(0, 60), lease_seconds=30)

    async def prune(self) -> None:
        await self.backend.prune(finished_before=self.moment(0, 60), limit=self.random.randint(1, 5))


@pytest.mark.parametrize("seed", range(6))
async def test_heaps_agree_with_a_brute_force_reading(seed: int) -> None:
    async with MemoryBackend() as backend:
        run = _Run(backend, seed)
        operations = [
            (run.enqueue, 6),
            (run.claim, 5),
            (run.finish, 3),
            (run.cancel_or_requeue, 2),
            (run.expire, 1),
            (run.statistics, 2),
            (run.expired_leases, 1),
            (run.renew, 1),
            (run.prune, 1),
        ]
        functions, weights = zip(*operations, strict=True)
        for _ in range(400):
            await run.random.choices(functions, weights)[0]()


async def test_stale_heap_entries_are_compacted() -> None:
    async with MemoryBackend() as backend:
        now = utc_now()
        record = TaskRecord(id=new_record_id(), task_name="t", created_at=now, scheduled_at=now)
        await backend.enqueue([record])
        (running,) = await backend.claim(["default"], owner="w", limit=1, now=now, lease_seconds=30)
        for second in range(20_000):
            await backend.renew([running.lease], now=now + timedelta(seconds=second), lease_seconds=30)
        assert len(backend._leases.items) <= 2048
        for _ in range(5_000):
            delayed = TaskRecord(
                id=new_record_id(), task_name="t", created_at=now, scheduled_at=now + timedelta(hours=1)
            )
            await backend.enqueue([delayed])
            await backend.cancel(delayed.id, now=now)
        assert sum(len(heap) for _, heap in backend._queues["default"].levels()) <= 2048

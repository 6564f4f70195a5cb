"""Deliberately broken backends, each breaking one rule of the contract; the suite must catch every one.

They subclass the memory backend and reach into its internals where a realistic bug needs to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from litestar_queues.backends.memory import MemoryBackend
from litestar_queues.records import (
    EnqueueOutcome,
    Lease,
    LeaseState,
    Outcome,
    RecordFilter,
    TaskRecord,
    TaskStatus,
)


async def _pending(backend: MemoryBackend, queues: Sequence[str], now: datetime) -> list[TaskRecord]:
    """Pending, unexpired records of ``queues`` in priority-then-id order (ignoring ``scheduled_at``)."""
    page = await backend.query(RecordFilter(status=TaskStatus.PENDING), limit=1_000_000)
    candidates = [
        record
        for record in page.records
        if record.queue in queues and (record.expires_at is None or record.expires_at > now)
    ]
    return sorted(candidates, key=lambda record: (-record.priority, record.scheduled_at, record.id))


class DoubleClaimingBackend(MemoryBackend):
    """Reads the due records, awaits (a round trip), then claims them without re-checking their status."""

    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_seconds: float
    ) -> list[TaskRecord]:
        due = [record for record in await _pending(self, queues, now) if record.scheduled_at <= now][: max(limit, 0)]
        await asyncio.sleep(0)
        claimed = []
        for record in due:
            self._records[record.id].status = TaskStatus.PENDING  # the bug: the write does not check the status
            taken = await self.claim_record(record.id, owner=owner, now=now, lease_seconds=lease_seconds)
            if taken is not None:
                claimed.append(taken)
        return claimed


class FenceIgnoringBackend(MemoryBackend):
    """Applies ``finish`` and ``renew`` to the current attempt whatever lease is presented."""

    async def finish(self, lease: Lease, outcome: Outcome, *, now: datetime) -> TaskRecord | None:
        current = await self.get(lease.record_id)
        return await super().finish(current.lease if current else lease, outcome, now=now)

    async def renew(self, leases: Sequence[Lease], *, now: datetime, lease_seconds: float) -> dict[str, LeaseState]:
        current = [await self.get(lease.record_id) for lease in leases]
        presented = [record.lease if record else lease for record, lease in zip(current, leases, strict=True)]
        return await super().renew(presented, now=now, lease_seconds=lease_seconds)


class ScheduleIgnoringBackend(MemoryBackend):
    """Claims pending records in priority order as if every one were due."""

    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_seconds: float
    ) -> list[TaskRecord]:
        claimed = []
        for record in (await _pending(self, queues, now))[: max(limit, 0)]:
            taken = await self.claim_record(record.id, owner=owner, now=now, lease_seconds=lease_seconds)
            if taken is not None:
                claimed.append(taken)
        return claimed


class KeyIgnoringBackend(MemoryBackend):
    """Never deduplicates by key (it still deduplicates by id)."""

    async def enqueue(self, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        outcomes = []
        for record in records:
            if record.key is not None:
                self._keys.holders.pop(record.key, None)
            outcomes += await super().enqueue([record])
        return outcomes


class KeyRacingBackend(MemoryBackend):
    """Checks for an active holder of the key, awaits (a round trip), then inserts without checking again."""

    async def enqueue(self, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        outcomes = []
        for record in records:
            holder = None if record.key is None else await self.get_by_key(record.key)
            if holder is not None and not holder.is_terminal:
                outcomes.append(EnqueueOutcome(holder, created=False))
                continue
            await asyncio.sleep(0)
            if record.key is not None:
                self._keys.holders.pop(record.key, None)  # the bug: the insert trusts the earlier check
            outcomes += await super().enqueue([record])
        return outcomes

"""Deliberately broken backends, each breaking one rule of the contract; the suite must catch every one.

They subclass the memory backend and reach into its internals where a realistic bug needs to.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from msgspec.structs import replace

from litestar_queues.backends.memory import MemoryBackend
from litestar_queues.clock import utc_now
from litestar_queues.errors import DuplicateTaskError
from litestar_queues.events import (
    EventFilter,
    EventPage,
    QueueEvent,
    event_cursor,
    event_position,
    parse_event_cursor,
)
from litestar_queues.records import (
    EnqueueOutcome,
    Lease,
    LeaseState,
    Outcome,
    QueueStatistics,
    RecordFilter,
    RecordPage,
    TaskProgress,
    TaskRecord,
    TaskStatus,
)
from litestar_queues.semantics import expired_record, holds, is_expired
from litestar_queues.waiters import Waiters


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


@contextmanager
def _unheard(backend: MemoryBackend, waiters: str) -> Iterator[None]:
    """Let the transitions made inside wake nobody waiting in ``backend.<waiters>``."""
    kept = getattr(backend, waiters)
    setattr(backend, waiters, Waiters())
    try:
        yield
    finally:
        setattr(backend, waiters, kept)


class EnqueueOnlyWakeupBackend(MemoryBackend):
    """Wakes ``wait_for_work`` on enqueue only: a retry, a stale recovery, a hand-back or a requeue wakes nobody."""

    async def finish(
        self, lease: Lease, outcome: Outcome, *, now: datetime, claimed: TaskRecord | None = None
    ) -> TaskRecord | None:
        with _unheard(self, "_work_waiters"):
            return await super().finish(lease, outcome, now=now, claimed=claimed)

    async def requeue(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        with _unheard(self, "_work_waiters"):
            return await super().requeue(record_id, now=now)


class FirstQueueOnlyWakeupBackend(MemoryBackend):
    """Listens only on the first of the queues it is asked to wait on."""

    async def wait_for_work(self, queues: Sequence[str], *, timeout: float) -> None:
        await super().wait_for_work(list(queues)[:1], timeout=timeout)


class BusyWaitingBackend(MemoryBackend):
    """Every wait returns at once, so whoever waits for work or for a finish spins."""

    async def wait_for_work(self, queues: Sequence[str], *, timeout: float) -> None:
        await asyncio.sleep(0)

    async def wait_for_finish(self, record_id: str, *, timeout: float) -> None:
        await asyncio.sleep(0)


class FinishOnlyWakeupBackend(MemoryBackend):
    """Wakes ``wait_for_finish`` on ``finish`` only: cancelling a pending record or expiring one wakes nobody."""

    async def cancel(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        with _unheard(self, "_finish_waiters"):
            return await super().cancel(record_id, now=now)

    async def expire(self, *, now: datetime, limit: int) -> int:
        with _unheard(self, "_finish_waiters"):
            return await super().expire(now=now, limit=limit)


class NewestByKeyBackend(MemoryBackend):
    """``get_by_key`` returns the most recently created record with the key, even while an older one is active."""

    async def get_by_key(self, key: str) -> TaskRecord | None:
        newest = self._keys.latest(key, self._records)
        return None if newest is None else await self.get(newest.id)


class LastStoredByKeyBackend(MemoryBackend):
    """``get_by_key`` falls back to the record stored last with the key, not the most recently created one."""

    def __init__(self) -> None:
        super().__init__()
        self._last_stored: dict[str, str] = {}

    async def enqueue(self, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        outcomes = await super().enqueue(records)
        for outcome in outcomes:
            if outcome.created and outcome.record.key is not None:
                self._last_stored[outcome.record.key] = outcome.record.id
        return outcomes

    async def get_by_key(self, key: str) -> TaskRecord | None:
        record_id = self._keys.holders.get(key) or self._last_stored.get(key)
        return None if record_id is None else await self.get(record_id)


class ConditionOverwritingQueryBackend(MemoryBackend):
    """``query`` drops the status condition when a queue is given too (a filter builder that overwrites)."""

    async def query(self, where: RecordFilter, *, limit: int, cursor: str | None = None) -> RecordPage:
        if where.status is not None and where.queue is not None:
            where = RecordFilter(queue=where.queue, task_name=where.task_name)
        return await super().query(where, limit=limit, cursor=cursor)


class CancelledCountedAsFailedBackend(MemoryBackend):
    """``statistics`` counts cancelled records as failed ones."""

    async def statistics(
        self, *, now: datetime, queue: str | None = None, count_limit: int | None = None
    ) -> QueueStatistics:
        stats = await super().statistics(now=now, queue=queue, count_limit=count_limit)
        counts = dict(stats.counts)
        counts[TaskStatus.FAILED] += counts[TaskStatus.CANCELLED]
        counts[TaskStatus.CANCELLED] = 0
        return replace(stats, counts=counts)


class OldestOfAllPendingBackend(MemoryBackend):
    """``statistics`` reports the oldest unexpired pending record as the oldest due one, delayed or not."""

    async def statistics(
        self, *, now: datetime, queue: str | None = None, count_limit: int | None = None
    ) -> QueueStatistics:
        stats = await super().statistics(now=now, queue=queue, count_limit=count_limit)
        pending = await _pending(self, [queue] if queue else list(self._queues), now)
        return replace(stats, oldest_pending_at=min((record.scheduled_at for record in pending), default=None))


class UnboundedNegativeLimitBackend(MemoryBackend):
    """Reads a negative ``limit`` as no limit in ``expired_leases``, ``expire``, ``prune`` and ``query``, as
    SQLite reads ``LIMIT -1`` and Redis ``LIMIT 0 -1``."""

    async def expired_leases(self, *, now: datetime, limit: int) -> list[TaskRecord]:
        return await super().expired_leases(now=now, limit=_unbounded(limit))

    async def expire(self, *, now: datetime, limit: int) -> int:
        return await super().expire(now=now, limit=_unbounded(limit))

    async def prune(self, *, finished_before: datetime, limit: int) -> int:
        return await super().prune(finished_before=finished_before, limit=_unbounded(limit))

    async def query(self, where: RecordFilter, *, limit: int, cursor: str | None = None) -> RecordPage:
        return await super().query(where, limit=_unbounded(limit), cursor=cursor)

    async def query_events(
        self, where: EventFilter, *, limit: int, cursor: str | None = None, newest_first: bool = False
    ) -> EventPage:
        return await super().query_events(where, limit=_unbounded(limit), cursor=cursor, newest_first=newest_first)

    async def prune_events(self, *, occurred_before: datetime, limit: int) -> int:
        return await super().prune_events(occurred_before=occurred_before, limit=_unbounded(limit))


def _unbounded(limit: int) -> int:
    return 1_000_000 if limit < 0 else limit


class SlicingClaimLimitBackend(MemoryBackend):
    """``claim`` cuts the due records with ``due[:limit]``: at ``limit=-1`` it claims all of them but the last."""

    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_seconds: float
    ) -> list[TaskRecord]:
        if limit < 0:
            due = [record for record in await _pending(self, queues, now) if record.scheduled_at <= now]
            limit = len(due[:limit])
        return await super().claim(queues, owner=owner, limit=limit, now=now, lease_seconds=lease_seconds)


class FreshOnlyExpiryBackend(MemoryBackend):
    """``expire`` skips records that already ran an attempt (pending again, waiting for a retry)."""

    async def expire(self, *, now: datetime, limit: int) -> int:
        expired = 0
        for record in list(self._records.values()):
            if expired >= limit:
                break
            never_ran = record.status is TaskStatus.PENDING and record.attempts == 0
            if never_ran and is_expired(record, now):
                self._replace(record, expired_record(record, now))
                expired += 1
        return expired


class RefundResettingBackend(MemoryBackend):
    """A hand-back (``refund_attempt``) resets ``attempts`` to 0 instead of giving one attempt back."""

    async def finish(
        self, lease: Lease, outcome: Outcome, *, now: datetime, claimed: TaskRecord | None = None
    ) -> TaskRecord | None:
        record = await super().finish(lease, outcome, now=now, claimed=claimed)
        if record is not None and record.status is TaskStatus.PENDING and outcome.refund_attempt:
            self._records[record.id].attempts = 0
            return await self.get(record.id)
        return record


class PartialRequeueBackend(MemoryBackend):
    """``requeue`` keeps ``cancel_requested``, and clears ``expires_at`` only of expired records."""

    async def requeue(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        stored = self._records.get(record_id)
        kept = None if stored is None else (stored.status, stored.expires_at, stored.cancel_requested)
        record = await super().requeue(record_id, now=now)
        if record is None or kept is None or record.status is not TaskStatus.PENDING:
            return record
        status, expires_at, cancel_requested = kept
        changed = self._records[record_id]
        changed.cancel_requested = cancel_requested
        if status is not TaskStatus.EXPIRED:
            changed.expires_at = expires_at
        return await self.get(record_id)


class RawDuplicateErrorBackend(MemoryBackend):
    """Lets the storage's unique-constraint error out where the contract names its own way: ``enqueue`` of an
    existing id and ``requeue`` of a record whose key another record holds raise ``sqlite3.IntegrityError``."""

    async def enqueue(self, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        if any(record.id in self._records for record in records):
            raise sqlite3.IntegrityError("UNIQUE constraint failed: tasks.id")
        return await super().enqueue(records)

    async def requeue(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        try:
            return await super().requeue(record_id, now=now)
        except DuplicateTaskError as error:
            raise sqlite3.IntegrityError("UNIQUE constraint failed: tasks.active_key") from error


class UncappedStatisticsBackend(MemoryBackend):
    """``statistics`` ignores ``count_limit`` (it counts everything, as if no limit were given)."""

    async def statistics(
        self, *, now: datetime, queue: str | None = None, count_limit: int | None = None
    ) -> QueueStatistics:
        return await super().statistics(now=now, queue=queue)


class CappedTotalStatisticsBackend(MemoryBackend):
    """``statistics`` stops counting once ``count_limit`` records of any status were counted (one shared budget)."""

    async def statistics(
        self, *, now: datetime, queue: str | None = None, count_limit: int | None = None
    ) -> QueueStatistics:
        stats = await super().statistics(now=now, queue=queue)
        if count_limit is None:
            return stats
        budget, counts = count_limit + 1, {}
        for status, count in stats.counts.items():
            counts[status] = min(count, budget)
            budget -= counts[status]
        return replace(stats, counts=counts)


@contextmanager
def _unpaused(backend: MemoryBackend) -> Iterator[None]:
    """Hide the backend's pauses from its own methods for a moment (none of them awaits)."""
    paused, backend._paused = backend._paused, {}
    try:
        yield
    finally:
        backend._paused = paused


class PrefixPauseBackend(MemoryBackend):
    """``claim`` skips every queue whose name starts with a paused one (a ``LIKE 'name%'`` match)."""

    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_seconds: float
    ) -> list[TaskRecord]:
        unpaused = [queue for queue in queues if not any(queue.startswith(name) for name in self._paused)]
        return await super().claim(unpaused, owner=owner, limit=limit, now=now, lease_seconds=lease_seconds)


class FirstQueuePauseBackend(MemoryBackend):
    """``claim`` checks only the first of ``queues`` for a pause (and then claims nothing)."""

    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_seconds: float
    ) -> list[TaskRecord]:
        if queues and queues[0] in self._paused:
            return []
        with _unpaused(self):
            return await super().claim(queues, owner=owner, limit=limit, now=now, lease_seconds=lease_seconds)


class RestampingPauseBackend(MemoryBackend):
    """``pause_queue`` of a paused queue stamps it again with its own ``now``."""

    async def pause_queue(self, queue: str, *, now: datetime) -> bool:
        was_paused = queue in self._paused
        self._paused[queue] = now
        return not was_paused


class SilentResumeBackend(MemoryBackend):
    """``resume_queue`` lifts the pause but wakes nobody."""

    async def resume_queue(self, queue: str) -> bool:
        return self._paused.pop(queue, None) is not None


class PausedWorkWakingBackend(MemoryBackend):
    """``wait_for_work`` returns at once while one of ``queues`` has a due record, paused or not."""

    async def wait_for_work(self, queues: Sequence[str], *, timeout: float) -> None:
        now = utc_now()
        if any(index.oldest_due(now) is not None for index in map(self._queues.get, queues) if index is not None):
            return
        await super().wait_for_work(queues, timeout=timeout)


class PausedEnqueueWakingBackend(MemoryBackend):
    """``enqueue`` wakes the waiters of every queue it stores a record of, paused or not."""

    async def enqueue(self, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        outcomes = await super().enqueue(records)
        for record in records:
            self._work_waiters.wake(record.queue)
        return outcomes


class UUIDColumnBackend(MemoryBackend):
    """Keeps record ids in a native UUID column: a record id that is no canonical UUID string is a driver error.

    Not broken: the suite must pass it, since every record id it uses is a UUID string.
    """

    async def enqueue(self, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        for record in records:
            _uuid_column(record.id)
        return await super().enqueue(records)

    async def get(self, record_id: str) -> TaskRecord | None:
        return await super().get(_uuid_column(record_id))

    async def claim_record(
        self, record_id: str, *, owner: str, now: datetime, lease_seconds: float
    ) -> TaskRecord | None:
        return await super().claim_record(_uuid_column(record_id), owner=owner, now=now, lease_seconds=lease_seconds)

    async def renew(self, leases: Sequence[Lease], *, now: datetime, lease_seconds: float) -> dict[str, LeaseState]:
        for lease in leases:
            _uuid_column(lease.record_id)
        return await super().renew(leases, now=now, lease_seconds=lease_seconds)

    async def finish(
        self, lease: Lease, outcome: Outcome, *, now: datetime, claimed: TaskRecord | None = None
    ) -> TaskRecord | None:
        _uuid_column(lease.record_id)
        return await super().finish(lease, outcome, now=now, claimed=claimed)

    async def cancel(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        return await super().cancel(_uuid_column(record_id), now=now)

    async def requeue(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        return await super().requeue(_uuid_column(record_id), now=now)

    async def save_progress(self, updates: Sequence[tuple[Lease, TaskProgress]]) -> None:
        for lease, _ in updates:
            _uuid_column(lease.record_id)
        await super().save_progress(updates)

    async def wait_for_finish(self, record_id: str, *, timeout: float) -> None:
        await super().wait_for_finish(_uuid_column(record_id), timeout=timeout)


def _uuid_column(record_id: str) -> str:
    if str(uuid.UUID(record_id)) != record_id:
        raise ValueError(f"invalid input syntax for type uuid: {record_id!r}")
    return record_id


class TransferRacingBackend(MemoryBackend):
    """Checks the fence, awaits (a round trip), then hands the attempt over without checking it again."""

    async def transfer(self, lease: Lease, *, owner: str, now: datetime, lease_seconds: float) -> TaskRecord | None:
        if not holds(self._records.get(lease.record_id), lease):
            return None
        await asyncio.sleep(0)
        record = self._records[lease.record_id]
        return await super().transfer(record.lease, owner=owner, now=now, lease_seconds=lease_seconds)


class _ListHistoryBackend(MemoryBackend):
    """The event history as a plain list, filtered and sorted at every query: the base of the history mutants,
    each of which changes one of the hooks below. Not broken itself."""

    def __init__(self) -> None:
        super().__init__()
        self._log: list[QueueEvent] = []

    @staticmethod
    def _order(event: QueueEvent) -> Any:
        return event_position(event)

    @staticmethod
    def _matches(where: EventFilter, event: QueueEvent) -> bool:
        return where.matches(event)

    @staticmethod
    def _stored(event: QueueEvent) -> QueueEvent:
        return QueueEvent.from_json(event.to_json())

    def _is_new(self, event: QueueEvent, earlier: Sequence[QueueEvent]) -> bool:
        return all(stored.id != event.id for stored in (*self._log, *earlier))

    async def append_events(self, events: Sequence[QueueEvent]) -> None:
        added: list[QueueEvent] = []
        for event in events:
            if self._is_new(event, added):
                added.append(self._stored(event))
        self._log += added

    def _start(self, events: list[QueueEvent], cursor: str, newest_first: bool) -> int:
        after = parse_event_cursor(cursor)
        passed = [
            event
            for event in events
            if (event_position(event) >= after if newest_first else event_position(event) <= after)
        ]
        return len(passed)

    def _cursor(self, page: list[QueueEvent], start: int) -> str:
        return event_cursor(event_position(page[-1]))

    async def query_events(
        self, where: EventFilter, *, limit: int, cursor: str | None = None, newest_first: bool = False
    ) -> EventPage:
        if limit <= 0:
            return EventPage([], None)
        events = sorted(
            (event for event in self._log if self._matches(where, event)), key=self._order, reverse=newest_first
        )
        start = 0 if cursor is None else self._start(events, cursor, newest_first)
        page = events[start : start + limit]
        more = start + limit < len(events)
        return EventPage([self._stored(event) for event in page], self._cursor(page, start) if more else None)

    def _old_enough(self, event: QueueEvent, occurred_before: datetime) -> bool:
        return event.occurred_at < occurred_before

    def _prune_order(self, events: list[QueueEvent]) -> list[QueueEvent]:
        return sorted(events, key=event_position)

    async def prune_events(self, *, occurred_before: datetime, limit: int) -> int:
        if limit <= 0:
            return 0
        old = self._prune_order([event for event in self._log if self._old_enough(event, occurred_before)])[:limit]
        gone = {event.id for event in old}
        self._log = [event for event in self._log if event.id not in gone]
        return len(gone)


class ListHistoryBackend(_ListHistoryBackend):
    """The list history, unchanged: the suite must pass it (so each mutant below fails for its own bug only)."""


class SequenceIgnoringHistoryBackend(_ListHistoryBackend):
    """Orders events by ``(occurred_at, id)``: the sequence does not break ties."""

    @staticmethod
    def _order(event: QueueEvent) -> Any:
        return (event.occurred_at, event.id)


class SequenceAsTextHistoryBackend(_ListHistoryBackend):
    """Stores the sequence as text, so 10 sorts before 2."""

    @staticmethod
    def _order(event: QueueEvent) -> Any:
        return (event.occurred_at, str(event.sequence or 0), event.id)


class MissingSequenceLastHistoryBackend(_ListHistoryBackend):
    """Sorts an event without a sequence after every event of the same moment (SQL's NULLS LAST)."""

    @staticmethod
    def _order(event: QueueEvent) -> Any:
        return (event.occurred_at, 2**63 if event.sequence is None else event.sequence, event.id)


class MillisecondHistoryBackend(_ListHistoryBackend):
    """Keeps ``occurred_at`` to the millisecond."""

    @staticmethod
    def _stored(event: QueueEvent) -> QueueEvent:
        moment = event.occurred_at
        return replace(event, occurred_at=moment.replace(microsecond=moment.microsecond // 1000 * 1000))


class OrFilterHistoryBackend(_ListHistoryBackend):
    """Selects an event that has any one of the fields the filter sets, not all of them."""

    @staticmethod
    def _matches(where: EventFilter, event: QueueEvent) -> bool:
        parts = [
            EventFilter(task_id=where.task_id),
            EventFilter(type=where.type),
            EventFilter(queue=where.queue),
            EventFilter(since=where.since, before=where.before),
        ]
        chosen = [part for part in parts if part != EventFilter()]
        return not chosen or any(part.matches(event) for part in chosen)


class InclusiveBeforeHistoryBackend(_ListHistoryBackend):
    """Reads ``before`` as inclusive: an event at that very moment is selected."""

    @staticmethod
    def _matches(where: EventFilter, event: QueueEvent) -> bool:
        widened = where if where.before is None else replace(where, before=where.before + timedelta(microseconds=1))
        return widened.matches(event)


class OffsetCursorHistoryBackend(_ListHistoryBackend):
    """Pages by offset: the cursor names the last event but the next page starts at a count of events."""

    def _cursor(self, page: list[QueueEvent], start: int) -> str:
        last = event_position(page[-1])
        return event_cursor(last._replace(id=f"{last.id}#{start + len(page)}"))

    def _start(self, events: list[QueueEvent], cursor: str, newest_first: bool) -> int:
        return int(parse_event_cursor(cursor).id.rpartition("#")[2])


class DuplicatingHistoryBackend(_ListHistoryBackend):
    """Stores an event again when its id is already stored."""

    def _is_new(self, event: QueueEvent, earlier: Sequence[QueueEvent]) -> bool:
        return True


class InclusivePruneHistoryBackend(_ListHistoryBackend):
    """Prunes events that occurred at ``occurred_before`` too."""

    def _old_enough(self, event: QueueEvent, occurred_before: datetime) -> bool:
        return event.occurred_at <= occurred_before


class NewestFirstPruneHistoryBackend(_ListHistoryBackend):
    """Prunes the newest of the old enough events first."""

    def _prune_order(self, events: list[QueueEvent]) -> list[QueueEvent]:
        return sorted(events, key=event_position, reverse=True)


class UnboundedPruneHistoryBackend(_ListHistoryBackend):
    """Prunes every old enough event, whatever the limit."""

    async def prune_events(self, *, occurred_before: datetime, limit: int) -> int:
        return await super().prune_events(occurred_before=occurred_before, limit=len(self._log) if limit > 0 else 0)


class FenceIgnoringProgressBackend(MemoryBackend):
    """Saves progress on the record whatever lease is presented."""

    async def save_progress(self, updates: Sequence[tuple[Lease, TaskProgress]]) -> None:
        for lease, progress in updates:
            record = self._records.get(lease.record_id)
            if record is not None:
                record.progress = progress


class FirstReportWinsProgressBackend(MemoryBackend):
    """Of several updates of one record in one call, applies the first (a bulk upsert keeping the first row)."""

    async def save_progress(self, updates: Sequence[tuple[Lease, TaskProgress]]) -> None:
        first: dict[str, tuple[Lease, TaskProgress]] = {}
        for lease, progress in updates:
            first.setdefault(lease.record_id, (lease, progress))
        await super().save_progress(list(first.values()))


class ProgressClearingFinishBackend(MemoryBackend):
    """``finish`` clears the progress (a finished record no longer shows how far it got)."""

    async def finish(
        self, lease: Lease, outcome: Outcome, *, now: datetime, claimed: TaskRecord | None = None
    ) -> TaskRecord | None:
        record = await super().finish(lease, outcome, now=now, claimed=claimed)
        if record is not None:
            self._records[record.id].progress = None
            return await self.get(record.id)
        return record


class ProgressKeepingRequeueBackend(MemoryBackend):
    """``requeue`` keeps the progress of the attempt that failed."""

    async def requeue(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        stored = self._records.get(record_id)
        progress = None if stored is None else stored.progress
        record = await super().requeue(record_id, now=now)
        if record is None or record.status is not TaskStatus.PENDING:
            return record
        self._records[record_id].progress = progress
        return await self.get(record_id)

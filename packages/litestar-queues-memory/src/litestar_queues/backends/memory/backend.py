"""The in-process memory backend: the default backend and the reference implementation of the contract."""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from litestar_queues.backend import Capability, QueueBackend
from litestar_queues.backends.memory.config import MemoryBackendConfig
from litestar_queues.backends.memory.history import EventLog
from litestar_queues.backends.memory.keys import KeyIndex
from litestar_queues.backends.memory.lazy_heap import LazyHeap
from litestar_queues.backends.memory.queue_index import QueueIndex
from litestar_queues.backends.memory.registry import LockTable, WorkerTable
from litestar_queues.backends.memory.snapshots import copy_record, copy_value
from litestar_queues.clock import utc_now
from litestar_queues.events.envelope import QueueEvent
from litestar_queues.events.history import HISTORY_SCAN_WINDOW, EventFilter, EventPage
from litestar_queues.records import (
    TERMINAL_STATUSES,
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
    WorkerInfo,
)
from litestar_queues.semantics import (
    cancelled_record,
    check_outcome,
    claimed_record,
    expired_record,
    finished_record,
    holds,
    lease_expired,
    lease_expiry,
    lease_state,
    matches,
    queue_statistics,
    requeue_conflict,
    requeued_record,
    transferred_record,
)
from litestar_queues.waiters import Waiters

__all__ = ("MemoryBackend",)

_PENDING = TaskStatus.PENDING
_RUNNING = TaskStatus.RUNNING
_IDS_SLACK = 1024
"""Deleted ids tolerated in the ordered id list beyond the live ones before it is rebuilt."""


class MemoryBackend(QueueBackend):
    """Stores records in this process's memory; nothing survives the process.

    Every method runs without awaiting, so each call is atomic on its event loop: concurrent tasks of
    one loop can never interleave inside a transition. It is not thread-safe; use it from one event
    loop (the waits of ``wait_for_work``/``wait_for_finish`` are asyncio futures of that loop).

    ``enqueue``, ``claim`` (per record claimed), ``claim_record``, ``renew``, ``finish``, ``cancel``,
    ``requeue``, ``expire`` and ``prune`` (per record changed) cost O(log n); ``statistics`` costs
    O(queues x priorities); ``query`` scans ids newest first until a page is full.

    Returned records are copies and stored records are copies of what was given, so neither side can
    change the other's lists and dicts. ``close()`` wakes every waiter and keeps the records.
    """

    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.PUSH_WAKEUP, Capability.FINISH_WAKEUP, Capability.TRANSFER, Capability.EVENT_HISTORY}
    )
    name: ClassVar[str] = "memory"
    local_only = True
    event_scan_window: int = HISTORY_SCAN_WINDOW
    """Most stored events one page of a history query examines (tests make it small)."""

    def __init__(self, config: MemoryBackendConfig | None = None) -> None:
        """Create an empty backend.

        Args:
            config: The configuration (the memory backend has no settings; defaults to ``MemoryBackendConfig()``).
        """
        self.config = config if config is not None else MemoryBackendConfig()
        self._records: dict[str, TaskRecord] = {}
        self._ids: list[str] = []
        """Stored ids in ascending order (deleted ones are skipped by readers until a rebuild)."""
        self._queues: dict[str, QueueIndex] = {}
        self._keys = KeyIndex()
        self._leases: LazyHeap[tuple[datetime, str, int]] = LazyHeap(self._is_lease_live)
        self._expiries: LazyHeap[tuple[datetime, str]] = LazyHeap(self._is_expiry_live)
        self._finished: LazyHeap[tuple[datetime, str]] = LazyHeap(self._is_finished_live)
        self._paused: dict[str, datetime] = {}
        self._workers = WorkerTable()
        self._locks = LockTable()
        self._work_waiters = Waiters()
        self._finish_waiters = Waiters()
        self._history = EventLog()

    async def close(self) -> None:
        """Wake every waiter; the records stay until the backend is dropped."""
        self._work_waiters.wake_all()
        self._finish_waiters.wake_all()

    # -- writing work ------------------------------------------------------------------------------

    async def enqueue(self, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        """Insert copies of ``records``, deduplicating by id and then by active key, in input order."""
        stored = self._records
        holders = self._keys.holders
        outcomes = []
        for given in records:
            existing = stored.get(given.id)
            if existing is None and given.key is not None:
                holder_id = holders.get(given.key)
                if holder_id is not None:
                    existing = stored[holder_id]
            if existing is not None:
                outcomes.append(EnqueueOutcome(copy_record(existing), created=False))
                continue
            record = copy_record(given)
            self._insert(record)
            outcomes.append(EnqueueOutcome(copy_record(record), created=True))
        return outcomes

    async def get(self, record_id: str) -> TaskRecord | None:
        """Return a copy of the record with ``record_id``, or ``None``."""
        record = self._records.get(record_id)
        return None if record is None else copy_record(record)

    async def get_by_key(self, key: str) -> TaskRecord | None:
        """Return the active holder of ``key``, else the most recently created record with it, else ``None``."""
        holder_id = self._keys.holders.get(key)
        record = self._records[holder_id] if holder_id is not None else self._keys.latest(key, self._records)
        return None if record is None else copy_record(record)

    # -- claiming and running ----------------------------------------------------------------------

    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_seconds: float
    ) -> list[TaskRecord]:
        """Claim up to ``limit`` due records of ``queues`` in due order (merging the queues' priority levels)."""
        if limit <= 0:
            return []
        # One source per (queue, priority) level, keyed by its next due record: the smallest key is next.
        sources: list[tuple[int, datetime, str, int]] = []
        levels: list[tuple[QueueIndex, int, list[tuple[datetime, str]]]] = []
        paused = self._paused
        for queue in dict.fromkeys(queues):
            index = self._queues.get(queue)
            if index is None or queue in paused:
                continue
            index.unpark(now)
            for priority, heap in index.levels():
                top = index.due_top(priority, heap, now)
                if top is not None:
                    sources.append((-priority, top.scheduled_at, top.id, len(levels)))
                    levels.append((index, priority, heap))
        if not sources:
            return []
        heapq.heapify(sources)
        lease_expires_at = lease_expiry(now, lease_seconds)
        records = self._records
        claimed = []
        while sources:
            _, _, record_id, source = sources[0]
            index, priority, heap = levels[source]
            heapq.heappop(heap)
            record = claimed_record(records[record_id], owner=owner, now=now, lease_expires_at=lease_expires_at)
            self._started(record, index)
            claimed.append(copy_record(record))
            if len(claimed) == limit:
                break
            top = index.due_top(priority, heap, now)
            if top is None:
                heapq.heappop(sources)
            else:
                heapq.heapreplace(sources, (-priority, top.scheduled_at, top.id, source))
        return claimed

    async def claim_record(
        self, record_id: str, *, owner: str, now: datetime, lease_seconds: float
    ) -> TaskRecord | None:
        """Claim the pending record ``record_id`` whatever its ``scheduled_at``; ``None`` if it is not pending."""
        record = self._records.get(record_id)
        if record is None or record.status is not _PENDING:
            return None
        record = claimed_record(record, owner=owner, now=now, lease_expires_at=lease_expiry(now, lease_seconds))
        self._started(record, self._queues[record.queue])
        return copy_record(record)

    async def renew(self, leases: Sequence[Lease], *, now: datetime, lease_seconds: float) -> dict[str, LeaseState]:
        """Extend every lease whose fence matches to ``now + lease_seconds``; report each lease's state."""
        lease_expires_at = lease_expiry(now, lease_seconds)
        states = {}
        for lease in leases:
            record = self._records.get(lease.record_id)
            state = states[lease.record_id] = lease_state(record, lease)
            if record is not None and state is not LeaseState.LOST and record.lease_expires_at != lease_expires_at:
                record.lease_expires_at = lease_expires_at
                self._leases.push((lease_expires_at, record.id, record.token))
        return states

    async def finish(
        self, lease: Lease, outcome: Outcome, *, now: datetime, claimed: TaskRecord | None = None
    ) -> TaskRecord | None:
        """End the attempt held by ``lease`` with ``outcome``; ``None`` (changing nothing) if the fence fails.

        ``claimed`` is not needed: the stored record is at hand.

        Raises:
            ValueError: ``outcome.status`` is ``running``, ``expired``, or ``pending`` without ``scheduled_at``.
        """
        check_outcome(outcome)
        record = self._records.get(lease.record_id)
        if not holds(record, lease) or (outcome.only_if_lease_expired and not lease_expired(record, now)):
            return None
        finished = finished_record(record, outcome, now)
        finished.result = copy_value(finished.result)  # the outcome's objects stay the caller's
        self._replace(record, finished)
        return copy_record(finished)

    async def save_progress(self, updates: Sequence[tuple[Lease, TaskProgress]]) -> None:
        """Set the progress of each record whose fence matches, in order."""
        for lease, progress in updates:
            record = self._records.get(lease.record_id)
            if holds(record, lease):
                record.progress = progress

    async def transfer(self, lease: Lease, *, owner: str, now: datetime, lease_seconds: float) -> TaskRecord | None:
        """Hand the attempt held by ``lease`` to ``owner`` with a new token and lease; ``None`` if the fence fails."""
        record = self._records.get(lease.record_id)
        if not holds(record, lease):
            return None
        record = transferred_record(record, owner=owner, lease_expires_at=lease_expiry(now, lease_seconds))
        self._records[record.id] = record
        self._leases.push((record.lease_expires_at, record.id, record.token))  # type: ignore[arg-type]
        return copy_record(record)

    async def expired_leases(self, *, now: datetime, limit: int) -> list[TaskRecord]:
        """Return up to ``limit`` running records whose lease expired at ``now``, earliest expiry first."""
        heap = self._leases.items
        expired: list[tuple[datetime, str, int]] = []
        while heap and len(expired) < limit and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if self._is_lease_live(entry):
                expired.append(entry)
        for entry in expired:  # still running: they stay candidates until recovered or renewed
            heapq.heappush(heap, entry)
        return [copy_record(self._records[record_id]) for _, record_id, _ in expired]

    # -- control -----------------------------------------------------------------------------------

    async def cancel(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Cancel a pending record, flag a running one with ``cancel_requested``, leave a terminal one alone."""
        record = self._records.get(record_id)
        if record is None:
            return None
        cancelled = cancelled_record(record, now)
        self._replace(record, cancelled)
        return copy_record(cancelled)

    async def requeue(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Put a failed, cancelled or expired record back to pending, due at ``now``, with no attempts or expiry.

        Raises:
            DuplicateTaskError: Another active record holds the record's key.
        """
        record = self._records.get(record_id)
        if record is None:
            return None
        conflict = requeue_conflict(record, None if record.key is None else self._keys.holders.get(record.key))
        if conflict is not None:
            raise conflict
        requeued = requeued_record(record, now)
        self._replace(record, requeued)
        return copy_record(requeued)

    async def expire(self, *, now: datetime, limit: int) -> int:
        """Mark up to ``limit`` pending records with ``expires_at <= now`` as expired; return how many."""
        heap = self._expiries.items
        expired = 0
        while heap and expired < limit and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if self._is_expiry_live(entry):
                record = self._records[entry[1]]
                self._replace(record, expired_record(record, now))
                expired += 1
        return expired

    async def prune(self, *, finished_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` terminal records with ``finished_at < finished_before``; return how many."""
        heap = self._finished.items
        deleted = 0
        while heap and deleted < limit and heap[0][0] < finished_before:
            entry = heapq.heappop(heap)
            if self._is_finished_live(entry):
                self._delete(self._records[entry[1]])
                deleted += 1
        if len(self._ids) > 2 * len(self._records) + _IDS_SLACK:
            self._ids = [record_id for record_id in self._ids if record_id in self._records]
        return deleted

    # -- event history -----------------------------------------------------------------------------

    async def append_events(self, events: Sequence[QueueEvent]) -> None:
        """Store copies of the events whose ids are new."""
        self._history.append(events)

    async def query_events(
        self, where: EventFilter, *, limit: int, cursor: str | None = None, newest_first: bool = False
    ) -> EventPage:
        """Return one page of stored events matching ``where`` in history order."""
        return self._history.query(
            where, limit=limit, cursor=cursor, newest_first=newest_first, window=self.event_scan_window
        )

    async def prune_events(self, *, occurred_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` events that occurred before ``occurred_before``, oldest first."""
        return self._history.prune(occurred_before=occurred_before, limit=limit)

    # -- reading -----------------------------------------------------------------------------------

    async def query(self, where: RecordFilter, *, limit: int, cursor: str | None = None) -> RecordPage:
        """Return up to ``limit`` matching records with ids below ``cursor``, newest first.

        ``next_cursor`` is the id of the page's last record when another matching record follows.
        """
        ids = self._ids
        records = self._records
        start = len(ids) if cursor is None else bisect.bisect_left(ids, cursor)
        page: list[TaskRecord] = []
        for position in range(start - 1, -1, -1):
            record = records.get(ids[position])
            if record is None or not matches(record, where):
                continue
            if len(page) >= limit:
                return RecordPage(page, page[-1].id if page else None)
            page.append(copy_record(record))
        return RecordPage(page, None)

    async def statistics(
        self, *, now: datetime, queue: str | None = None, count_limit: int | None = None
    ) -> QueueStatistics:
        """Count records by status and find the oldest due pending record, for ``queue`` or all queues.

        The counts are kept up to date by every transition, so ``count_limit`` saves nothing; it caps them.
        """
        counts: list[tuple[TaskStatus, int]] = []
        oldest: datetime | None = None
        for name in (queue,) if queue is not None else tuple(self._queues):
            index = self._queues.get(name)
            if index is None:
                continue
            counts += index.counts.items()
            due = index.oldest_due(now)
            if due is not None and (oldest is None or due < oldest):
                oldest = due
        return queue_statistics(counts, oldest_pending_at=oldest, queue=queue, count_limit=count_limit)

    # -- pausing queues ----------------------------------------------------------------------------

    async def pause_queue(self, queue: str, *, now: datetime) -> bool:
        """Pause ``queue`` (kept until resumed or the backend is dropped); whether this call paused it."""
        if queue in self._paused:
            return False
        self._paused[queue] = now
        return True

    async def resume_queue(self, queue: str) -> bool:
        """Resume ``queue`` and wake whoever waits for its work; whether it was paused."""
        if self._paused.pop(queue, None) is None:
            return False
        if self._work_waiters:
            self._work_waiters.wake(queue)
        return True

    async def paused_queues(self) -> dict[str, datetime]:
        """The paused queues and when each was paused."""
        return dict(self._paused)

    # -- workers and maintenance -------------------------------------------------------------------

    async def register_worker(self, info: WorkerInfo, *, ttl_seconds: float) -> None:
        """Insert or replace a copy of ``info``, live until ``last_heartbeat_at + ttl_seconds``."""
        self._workers.register(info, ttl_seconds)

    async def remove_worker(self, worker_id: str) -> None:
        """Forget ``worker_id``."""
        self._workers.remove(worker_id)

    async def list_workers(self, *, now: datetime) -> list[WorkerInfo]:
        """Return copies of the workers live at ``now``, ordered by id."""
        return self._workers.live(now)

    async def acquire_lock(self, name: str, *, owner: str, ttl_seconds: float, now: datetime) -> bool:
        """Take or renew lock ``name`` for ``owner`` unless another owner holds it unexpired at ``now``."""
        return self._locks.acquire(name, owner, ttl_seconds, now)

    async def release_lock(self, name: str, *, owner: str) -> None:
        """Release lock ``name`` if ``owner`` holds it."""
        self._locks.release(name, owner)

    # -- push --------------------------------------------------------------------------------------

    async def wait_for_work(self, queues: Sequence[str], *, timeout: float) -> None:
        """Return when a record becomes pending in ``queues``, when a delayed one falls due, or after ``timeout``.

        A record falls due by time passing, which nothing announces, so the wait also ends at the
        earliest ``scheduled_at`` of the queues' pending records, leaving out due ones that expired and paused
        queues (they are no work: returning for them would return at once again and again). By the wall clock:
        this is a hint, and the caller's clock decides what ``claim`` returns.
        """
        earliest: datetime | None = None
        wall_now = utc_now()
        for queue in queues:
            index = None if queue in self._paused else self._queues.get(queue)
            scheduled_at = None if index is None else index.earliest_scheduled(wall_now)
            if scheduled_at is not None and (earliest is None or scheduled_at < earliest):
                earliest = scheduled_at
        if earliest is not None:
            timeout = min(timeout, (earliest - wall_now).total_seconds())
        names = tuple(queues)
        await self._work_waiters.wait(self._work_waiters.register(names), names, timeout)

    async def wait_for_finish(self, record_id: str, *, timeout: float) -> None:
        """Return when ``record_id`` becomes terminal or after ``timeout``; at once if it is terminal or unknown."""
        record = self._records.get(record_id)
        settled = record is None or record.status in TERMINAL_STATUSES
        future = self._finish_waiters.register((record_id,))
        await self._finish_waiters.wait(future, (record_id,), 0.0 if settled else timeout)

    # -- internals ---------------------------------------------------------------------------------

    def _insert(self, record: TaskRecord) -> None:
        if type(record.status) is not TaskStatus:
            record.status = TaskStatus(record.status)
        self._records[record.id] = record
        ids = self._ids
        if not ids or record.id > ids[-1]:
            ids.append(record.id)
        else:
            position = bisect.bisect_left(ids, record.id)
            if position == len(ids) or ids[position] != record.id:  # a pruned id may still be listed
                ids.insert(position, record.id)
        self._keys.add(record)
        index = self._queues.get(record.queue)
        if index is None:
            index = self._queues[record.queue] = QueueIndex(record.queue, self._records)
        index.counts[record.status] += 1
        self._entered(record, index)

    def _delete(self, record: TaskRecord) -> None:
        del self._records[record.id]
        self._queues[record.queue].counts[record.status] -= 1
        self._keys.discard(record)

    def _started(self, record: TaskRecord, index: QueueIndex) -> None:
        """Store ``record``, just claimed (a pending record already holds its key)."""
        self._records[record.id] = record
        counts = index.counts
        counts[_PENDING] -= 1
        counts[_RUNNING] += 1
        self._leases.push((record.lease_expires_at, record.id, record.token))  # type: ignore[arg-type]

    def _replace(self, before: TaskRecord, after: TaskRecord) -> None:
        """Store ``after`` in place of ``before`` (a transition of it) and index the status it entered."""
        self._records[after.id] = after
        if after.status is not before.status:
            index = self._queues[after.queue]
            index.counts[before.status] -= 1
            index.counts[after.status] += 1
            self._entered(after, index)

    def _entered(self, record: TaskRecord, index: QueueIndex) -> None:
        """Index ``record`` for the status it just entered and wake whoever waits for that."""
        status = record.status
        if status is _PENDING:
            self._keys.hold(record)
            index.push(record)
            if record.expires_at is not None:
                self._expiries.push((record.expires_at, record.id))
            if self._work_waiters and record.queue not in self._paused:
                self._work_waiters.wake(record.queue)
        elif status is _RUNNING:
            self._keys.hold(record)
            if record.lease_expires_at is not None:
                self._leases.push((record.lease_expires_at, record.id, record.token))
        else:
            self._keys.release(record)
            if record.finished_at is not None:
                self._finished.push((record.finished_at, record.id))
            if self._finish_waiters:
                self._finish_waiters.wake(record.id)

    def _is_lease_live(self, entry: tuple[datetime, str, int]) -> bool:
        record = self._records.get(entry[1])
        return (
            record is not None
            and record.status is _RUNNING
            and record.token == entry[2]
            and record.lease_expires_at == entry[0]
        )

    def _is_expiry_live(self, entry: tuple[datetime, str]) -> bool:
        record = self._records.get(entry[1])
        return record is not None and record.status is _PENDING and record.expires_at == entry[0]

    def _is_finished_live(self, entry: tuple[datetime, str]) -> bool:
        record = self._records.get(entry[1])
        return record is not None and record.status in TERMINAL_STATUSES and record.finished_at == entry[0]

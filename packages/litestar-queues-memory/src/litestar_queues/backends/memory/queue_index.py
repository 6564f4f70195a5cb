"""The pending records of one queue, indexed so the next due record is found in O(log n)."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import datetime

from litestar_queues.backends.memory.lazy_heap import LazyHeap
from litestar_queues.records import TaskRecord, TaskStatus

__all__ = ("QueueIndex",)

_PENDING = TaskStatus.PENDING

Level = LazyHeap[tuple[datetime, str]]
"""Pending records of one priority as ``(scheduled_at, id)``: due order within a priority is heap order."""


class QueueIndex:
    """Due-order index and status counts of one queue.

    Each priority has its own heap of ``(scheduled_at, id)``, so the top of a level is its next due
    record and the first record of a level that is not yet due proves that none after it is. A record
    that is due but expired at some ``now`` is *parked* (out of its level, in a heap by ``expires_at``)
    so it stops blocking its level; a later call with an earlier ``now`` puts it back. Entries are hints
    checked against the stored record, so transitions never search the heaps.
    """

    __slots__ = ("_levels", "_parked", "_records", "counts", "name")

    def __init__(self, name: str, records: dict[str, TaskRecord]) -> None:
        """Create the index of queue ``name`` over the backend's ``records``.

        Args:
            name: The queue this index covers.
            records: The backend's storage, id to stored record (shared, not copied).
        """
        self.name = name
        self.counts: dict[TaskStatus, int] = dict.fromkeys(TaskStatus, 0)
        """How many records of this queue have each status."""
        self._records = records
        self._levels: dict[int, Level] = {}
        self._parked: LazyHeap[tuple[float, str]] = LazyHeap(self._is_parked)

    # -- writing -----------------------------------------------------------------------------------

    def push(self, record: TaskRecord) -> None:
        """Index ``record``, which just became pending (or changed its ``scheduled_at``)."""
        level = self._levels.get(record.priority)
        if level is None:
            level = self._levels[record.priority] = LazyHeap(self._level_liveness(record.priority))
        level.push((record.scheduled_at, record.id))

    def unpark(self, now: datetime) -> None:
        """Return parked records that are not expired at ``now`` to their levels."""
        parked = self._parked.items
        records = self._records
        while parked:
            record = records.get(parked[0][1])
            if record is None or not self._is_parked(parked[0]):
                heapq.heappop(parked)
            elif record.expires_at is not None and record.expires_at > now:
                heapq.heappop(parked)
                self.push(record)
            else:
                break

    # -- reading -----------------------------------------------------------------------------------

    def levels(self) -> list[tuple[int, list[tuple[datetime, str]]]]:
        """Return ``(priority, heap)`` of every non-empty level, forgetting empty ones."""
        found = []
        for priority, level in list(self._levels.items()):
            if level.items:
                found.append((priority, level.items))
            else:
                del self._levels[priority]
        return found

    def due_top(self, priority: int, heap: list[tuple[datetime, str]], now: datetime) -> TaskRecord | None:
        """Return the next due record of a level at ``now`` (left on the heap), or ``None``.

        Pops stale entries and parks expired records on the way.
        """
        records = self._records
        while heap:
            scheduled_at, record_id = heap[0]
            record = records.get(record_id)
            if record is None or not self._is_level_entry_live(record, scheduled_at, priority):
                heapq.heappop(heap)
                continue
            if scheduled_at > now:
                return None
            expires_at = record.expires_at
            if expires_at is not None and expires_at <= now:
                heapq.heappop(heap)
                self._parked.push((-expires_at.timestamp(), record_id))
                continue
            return record
        return None

    def oldest_due(self, now: datetime) -> datetime | None:
        """Return the ``scheduled_at`` of the oldest due record at ``now``, or ``None``."""
        self.unpark(now)
        oldest: datetime | None = None
        for priority, heap in self.levels():
            top = self.due_top(priority, heap, now)
            if top is not None and (oldest is None or top.scheduled_at < oldest):
                oldest = top.scheduled_at
        return oldest

    def earliest_scheduled(self, now: datetime) -> datetime | None:
        """Return the earliest ``scheduled_at`` of the pending records, due or not, leaving out due ones expired at
        ``now`` (parked on the way, as a claim at ``now`` parks them)."""
        earliest: datetime | None = None
        for priority, heap in self.levels():
            top = self.due_top(priority, heap, now)
            if top is not None:
                scheduled_at = top.scheduled_at
            elif heap:  # its live top is not due yet
                scheduled_at = heap[0][0]
            else:
                continue
            if earliest is None or scheduled_at < earliest:
                earliest = scheduled_at
        return earliest

    # -- liveness of entries -----------------------------------------------------------------------

    def _is_level_entry_live(self, record: TaskRecord, scheduled_at: datetime, priority: int) -> bool:
        return (
            record.status is _PENDING
            and record.scheduled_at == scheduled_at
            and record.priority == priority
            and record.queue == self.name
        )

    def _level_liveness(self, priority: int) -> Callable[[tuple[datetime, str]], bool]:
        def is_live(entry: tuple[datetime, str]) -> bool:
            record = self._records.get(entry[1])
            return record is not None and self._is_level_entry_live(record, entry[0], priority)

        return is_live

    def _is_parked(self, entry: tuple[float, str]) -> bool:
        record = self._records.get(entry[1])
        return (
            record is not None
            and record.status is _PENDING
            and record.expires_at is not None
            and record.queue == self.name
        )

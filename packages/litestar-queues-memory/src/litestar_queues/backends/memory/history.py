"""The memory backend's event history: events kept as JSON, in position order, with an index per task."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import datetime

from litestar_queues.events.envelope import QueueEvent
from litestar_queues.events.history import (
    EventFilter,
    EventPage,
    EventPosition,
    dump_stored_event,
    event_cursor,
    event_position,
    load_stored_events,
    parse_event_cursor,
)

__all__ = ("EventLog",)


class _Stored:
    """One stored event: the fields filters read, and the event as stored (so no caller can change it)."""

    __slots__ = ("data", "queue", "task_id", "type")

    def __init__(self, event: QueueEvent) -> None:
        self.task_id = event.task_id
        self.type = event.type
        self.queue = event.queue
        self.data = dump_stored_event(event)


class EventLog:
    """Stored events in position order; appending costs O(log n) plus the list insert, near the end for new events.

    A query reads the positions of one task (``task_id`` given) or of every event, from the cursor onwards within
    the time bounds, checking the other filters, at most a window of them per page (as every backend may); pruning
    removes the oldest positions.
    """

    __slots__ = ("_by_task", "_events", "_order")

    def __init__(self) -> None:
        self._events: dict[str, _Stored] = {}
        self._order: list[EventPosition] = []
        self._by_task: dict[str, list[EventPosition]] = {}

    def append(self, events: Sequence[QueueEvent]) -> None:
        """Store the events whose ids are new."""
        for event in events:
            if event.id in self._events:
                continue
            position = event_position(event)
            self._events[event.id] = _Stored(event)
            bisect.insort(self._order, position)
            if event.task_id is not None:
                bisect.insort(self._by_task.setdefault(event.task_id, []), position)

    def query(
        self, where: EventFilter, *, limit: int, cursor: str | None, newest_first: bool, window: int
    ) -> EventPage:
        """One page of matching events in history order (see ``QueueBackend.query_events``): at most ``window`` events
        past the cursor are examined, so a page may be short (even empty) with a cursor at the last one examined."""
        if limit <= 0:
            return EventPage([], None)
        positions = self._order if where.task_id is None else self._by_task.get(where.task_id, [])
        start = 0 if where.since is None else bisect.bisect_left(positions, (where.since,))
        end = len(positions) if where.before is None else bisect.bisect_left(positions, (where.before,))
        after = None if cursor is None else parse_event_cursor(cursor)
        if newest_first:
            if after is not None:
                end = min(end, bisect.bisect_left(positions, after))
            indexes = range(end - 1, start - 1, -1)
        else:
            if after is not None:
                start = max(start, bisect.bisect_right(positions, after))
            indexes = range(start, end)
        page: list[tuple[EventPosition, _Stored]] = []
        next_cursor: str | None = None
        for examined, index in enumerate(indexes, 1):
            position = positions[index]
            stored = self._events[position.id]
            if (where.type is None or stored.type == where.type) and (
                where.queue is None or stored.queue == where.queue
            ):
                if len(page) == limit:
                    next_cursor = event_cursor(page[-1][0])
                    break
                page.append((position, stored))
            if examined == window and examined < len(indexes):
                next_cursor = event_cursor(position)
                break
        return EventPage(load_stored_events((position.id, stored.data) for position, stored in page), next_cursor)

    def prune(self, *, occurred_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` events with ``occurred_at < occurred_before``, oldest first; return how many."""
        if limit <= 0:
            return 0
        count = min(limit, bisect.bisect_left(self._order, (occurred_before,)))
        for position in self._order[:count]:
            stored = self._events.pop(position.id)
            if stored.task_id is not None:
                positions = self._by_task[stored.task_id]
                del positions[bisect.bisect_left(positions, position)]
                if not positions:
                    del self._by_task[stored.task_id]
        del self._order[:count]
        return count

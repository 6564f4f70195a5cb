"""The event history table of the SQL backends: what a stored event's row holds, and how a page of them is read.

Each backend supplies an :class:`EventStore` (its statements, through its library) over one table: ``id`` (the
primary key), ``occurred_at``, ``seq`` (the event's sequence, ``0`` without one), ``task_id``, ``queue``,
``event_type`` and ``body`` (the event as :func:`~litestar_queues.events.history.dump_stored_event` makes it).
The table has three indexes, so storing an event costs three B-tree inserts: the primary key, the history order
``(occurred_at, seq, id)`` and ``(task_id, occurred_at, seq, id)``.

:func:`query_event_page` reads every page the same way on every backend. A query of one task reads that task's
index range. A query by type or queue without a task has no index of its own: it examines at most ``window`` events
of the history order past its cursor
(:data:`~litestar_queues.events.history.HISTORY_SCAN_WINDOW`, through the order index) and returns those that
match, so a page of a rare type may come back short, or empty, with a cursor at the last event it examined; the
next page goes on from there. Any other query is one range of the order index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from litestar_queues.events.envelope import QueueEvent
from litestar_queues.events.history import (
    EventFilter,
    EventPage,
    EventPosition,
    dump_stored_event,
    event_cursor,
    load_stored_events,
    parse_event_cursor,
)
from litestar_queues.records import Lease

__all__ = (
    "EVENT_COLUMNS",
    "EVENT_ORDER",
    "EventRow",
    "EventStore",
    "event_rows",
    "query_event_page",
)

EVENT_COLUMNS = ("id", "occurred_at", "seq", "task_id", "queue", "event_type", "body")
"""The columns of the events table, in insert order."""
EVENT_ORDER = ("occurred_at", "seq", "id")
"""The history order: the order index's columns, and the end of the task index's."""


class EventRow(NamedTuple):
    """A row a query read: the stored event's position and its ``body``."""

    position: EventPosition
    body: str


class EventStore(Protocol):
    """Append, read and prune one events table (times are aware UTC)."""

    combines_progress: bool
    """Whether :meth:`append_with_progress` stores events and progress in one statement (else it is never called)."""

    async def append(self, events: Sequence[QueueEvent]) -> None:
        """Insert the events whose ids are not stored (later copies of an id in ``events`` are skipped too)."""
        ...

    async def append_with_progress(self, events: Sequence[QueueEvent], progress: Sequence[tuple[Lease, str]]) -> None:
        """:meth:`append` and, in the same statement, set ``progress`` (JSON) of each running record whose fence
        matches (at most one update per fence), as ``RecordStore.save_progress`` does."""
        ...

    async def select(
        self, where: EventFilter, *, after: EventPosition | None, limit: int, newest_first: bool, window: int | None
    ) -> list[EventRow]:
        """Up to ``limit`` rows of the events matching ``where`` past ``after`` (``None``: from the start), in
        history order (descending with ``newest_first``).

        With ``window`` (only when ``where`` sets no ``task_id``), only the first ``window`` events past ``after``
        within ``where``'s time range are examined, in that order, and of those the ones of ``where``'s type and
        queue are returned.
        """
        ...

    async def window_end(
        self, where: EventFilter, *, after: EventPosition | None, newest_first: bool, window: int
    ) -> EventPosition | None:
        """The position of the ``window``-th event past ``after`` within ``where``'s time range (of every type and
        queue, in the order of :meth:`select`), or ``None`` when no event follows that one."""
        ...

    async def prune(self, *, occurred_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` (positive) events that occurred before ``occurred_before``, oldest first; how many."""
        ...


def event_rows(events: Sequence[QueueEvent], time: Callable[[datetime], Any]) -> list[tuple[Any, ...]]:
    """The rows of ``events`` in :data:`EVENT_COLUMNS` order; ``time`` encodes a moment for the database."""
    return [
        (
            event.id,
            time(event.occurred_at),
            event.sequence or 0,
            event.task_id,
            event.queue,
            event.type,
            dump_stored_event(event).decode(),
        )
        for event in events
    ]


async def query_event_page(
    store: EventStore, where: EventFilter, *, limit: int, cursor: str | None, newest_first: bool, window: int
) -> EventPage:
    """One page (``limit`` positive) of the events matching ``where`` past ``cursor``, as ``query_events`` returns it.

    ``next_cursor`` is the position of the page's last event when another matching event follows it; after a page
    whose window of ``window`` events ran out first, the position of the last event examined (past the page's
    events, which may be none); ``None`` once nothing is left to examine. A stored event that cannot be decoded is
    logged and left out (the page is one shorter; the cursor is unchanged).

    Raises:
        ValueError: ``cursor`` is not a cursor of this history.
    """
    after = None if cursor is None else parse_event_cursor(cursor)
    windowed = where.task_id is None and (where.type is not None or where.queue is not None)
    scan = window if windowed else None
    rows = await store.select(where, after=after, limit=limit + 1, newest_first=newest_first, window=scan)
    end: EventPosition | None = None
    if len(rows) > limit:
        del rows[limit:]
        end = rows[-1].position
    elif scan is not None:
        end = await store.window_end(where, after=after, newest_first=newest_first, window=scan)
        if end is not None and rows and (rows[-1].position > end) != newest_first:
            end = rows[-1].position  # events inserted meanwhile moved the window's end before the page's end
    events = load_stored_events((row.position.id, row.body) for row in rows)
    return EventPage(events, None if end is None else event_cursor(end))

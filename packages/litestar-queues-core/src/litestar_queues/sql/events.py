"""The event history table of the SQL backends: what a stored event's row holds, and what a page of them is.

Each backend supplies an :class:`EventStore` (its statements, through its library) over one table: ``id`` (the
primary key), ``occurred_at``, ``seq`` (the event's sequence, ``0`` without one), ``task_id``, ``queue``,
``event_type`` and ``body`` (the event as :func:`~litestar_queues.events.history.dump_stored_event` makes it).
Pages are read in the history order ``(occurred_at, seq, id)``, which every index of the table ends in, so a page
of one task, queue or type is one index range.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from litestar_queues.events.envelope import QueueEvent
from litestar_queues.events.history import (
    EventFilter,
    EventPage,
    dump_stored_event,
    event_cursor,
    event_position,
    load_stored_event,
)

__all__ = ("EVENT_COLUMNS", "EVENT_ORDER", "EventStore", "event_page", "event_rows")

EVENT_COLUMNS = ("id", "occurred_at", "seq", "task_id", "queue", "event_type", "body")
"""The columns of the events table, in insert order."""
EVENT_ORDER = ("occurred_at", "seq", "id")
"""The history order: the columns every index of the table ends in."""


class EventStore(Protocol):
    """Append, page through and prune one events table (times are aware UTC)."""

    async def append(self, events: Sequence[QueueEvent]) -> None:
        """Insert the events whose ids are not stored (later copies of an id in ``events`` are skipped too)."""
        ...

    async def query(self, where: EventFilter, *, limit: int, cursor: str | None, newest_first: bool) -> EventPage:
        """One page (``limit`` positive) of matching events in history order (:func:`event_page`)."""
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


def event_page(bodies: Sequence[str], limit: int) -> EventPage:
    """The page of the bodies a query read: ``limit + 1`` of them at most, the extra one telling that another page
    follows."""
    events = [load_stored_event(body) for body in bodies]
    if len(events) > limit:
        del events[limit:]
        return EventPage(events, event_cursor(event_position(events[-1])))
    return EventPage(events, None)

"""Event history: what a query selects, one page of stored events, and the order and cursors every backend shares.

Stored events are ordered by their *position* ``(occurred_at, sequence, id)``: time first, then the sequence
number (an event without one counts as ``0``), then the id (compared as strings, code point by code point). A
cursor names a position; the next page starts after it. Every backend makes and reads cursors with
:func:`event_cursor` and :func:`parse_event_cursor`, so the service can check a cursor before asking the backend.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import NamedTuple

import msgspec

from litestar_queues.events.envelope import QueueEvent

__all__ = ("EventFilter", "EventPage", "EventPosition", "event_cursor", "event_position", "parse_event_cursor")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


class EventFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which stored events a query selects: an event matches when it has every field set here (``None``: any).

    ``since`` and ``before`` bound ``occurred_at`` as a half-open range: ``since <= occurred_at < before``.
    """

    task_id: str | None = None
    type: str | None = None
    queue: str | None = None
    since: datetime | None = None
    """Only events that occurred at or after this moment."""
    before: datetime | None = None
    """Only events that occurred strictly before this moment."""

    def matches(self, event: QueueEvent) -> bool:
        """Whether ``event`` has every field this filter sets (what a backend's query must select)."""
        return (
            (self.task_id is None or event.task_id == self.task_id)
            and (self.type is None or event.type == self.type)
            and (self.queue is None or event.queue == self.queue)
            and (self.since is None or event.occurred_at >= self.since)
            and (self.before is None or event.occurred_at < self.before)
        )


class EventPage(msgspec.Struct, frozen=True):
    """One page of stored events, and the cursor of the next page (``None`` after the last page)."""

    events: list[QueueEvent]
    next_cursor: str | None


class EventPosition(NamedTuple):
    """Where an event sorts in the history: ``(occurred_at, sequence or 0, id)``, compared as a tuple."""

    occurred_at: datetime
    sequence: int
    id: str

    @property
    def micros(self) -> int:
        """``occurred_at`` as integer microseconds since the epoch (how several backends store it)."""
        return (self.occurred_at - _EPOCH) // _MICROSECOND


def event_position(event: QueueEvent) -> EventPosition:
    """The position of ``event`` in the history order."""
    return EventPosition(event.occurred_at, event.sequence or 0, event.id)


def event_cursor(position: EventPosition) -> str:
    """The cursor of a page that ends at ``position``: ``<microseconds since the epoch>:<sequence>:<id>``."""
    return f"{position.micros}:{position.sequence}:{position.id}"


def parse_event_cursor(cursor: str) -> EventPosition:
    """The position a cursor names.

    Raises:
        ValueError: ``cursor`` was not made by :func:`event_cursor`.
    """
    micros, _, rest = cursor.partition(":")
    sequence, _, event_id = rest.partition(":")
    try:
        moment = _EPOCH + timedelta(microseconds=int(micros))
        number = int(sequence)
    except (ValueError, OverflowError):
        raise ValueError(f"malformed event cursor {cursor!r}: pass the next_cursor of a page of events") from None
    if not event_id:
        raise ValueError(f"malformed event cursor {cursor!r}: pass the next_cursor of a page of events")
    return EventPosition(moment, number, event_id)

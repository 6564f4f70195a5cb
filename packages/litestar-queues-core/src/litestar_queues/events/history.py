"""Event history: what a query selects, one page of stored events, and the order and cursors every backend shares.

Stored events are ordered by their *position* ``(occurred_at, sequence, id)``: time first, then the sequence
number (an event without one counts as ``0``), then the id (compared as strings, code point by code point). A
cursor names a position; the next page starts after it. Every backend makes and reads cursors with
:func:`event_cursor` and :func:`parse_event_cursor`, so the service can check a cursor before asking the backend.

Backends store an event as :func:`dump_stored_event` makes it: the JSON array of its field values in
:class:`QueueEvent`'s field order, without the names (half the size of the wire JSON, encoded in under half the
time). Its JSON semantics are the wire's (``payload`` passes through JSON), and :func:`load_stored_event` gives back
an event equal to the one stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

import msgspec

from litestar_queues.events.envelope import QueueEvent

__all__ = (
    "HISTORY_SCAN_WINDOW",
    "EventFilter",
    "EventPage",
    "EventPosition",
    "dump_stored_event",
    "event_cursor",
    "event_position",
    "load_stored_event",
    "load_stored_events",
    "parse_event_cursor",
)

logger = logging.getLogger("litestar_queues.events")

HISTORY_SCAN_WINDOW = 10_000
"""Most stored events one page of a history query examines where no index selects the matches (a query by type or
queue): past them the page ends, short or even empty, with a cursor to go on from (``QueueBackend.query_events``)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _stored_fields() -> list[tuple[str, Any] | tuple[str, Any, Any]]:
    """:class:`QueueEvent`'s fields; those after the last required one keep their defaults, so an array stored
    before a field was added at the end still loads."""
    fields = msgspec.structs.fields(QueueEvent)
    last_required = max(number for number, field in enumerate(fields) if field.required)
    return [
        (field.name, field.type) if number <= last_required else (field.name, field.type, _default(field))
        for number, field in enumerate(fields)
    ]


def _default(field: msgspec.structs.FieldInfo) -> Any:
    if field.default_factory is msgspec.NODEFAULT:
        return field.default
    return msgspec.field(default_factory=field.default_factory)


_StoredEvent = msgspec.defstruct("_StoredEvent", _stored_fields(), array_like=True)
"""A stored event: :class:`QueueEvent`'s fields, by position."""
_encode_stored = msgspec.json.Encoder().encode
_decode_stored = msgspec.json.Decoder(_StoredEvent).decode


def dump_stored_event(event: QueueEvent) -> bytes:
    """The form a history stores ``event`` in: the JSON array of its field values, in field order."""
    return _encode_stored(msgspec.structs.astuple(event))


def load_stored_event(data: bytes | str) -> QueueEvent:
    """The event :func:`dump_stored_event` stored as ``data`` (or an event stored as its wire JSON object, the form
    histories kept before the array)."""
    if data[:1] in (b"{", "{"):
        return QueueEvent.from_json(data)
    return msgspec.convert(_decode_stored(data), QueueEvent, from_attributes=True)


def load_stored_events(stored: Iterable[tuple[str, bytes | str]]) -> list[QueueEvent]:
    """The events of ``stored`` (``(what, data)`` pairs: ``what`` names the stored event in a log line, ``data`` is
    as :func:`load_stored_event` reads it), in order; one that cannot be decoded is logged and left out, so one
    damaged event never fails a query of the history."""
    events: list[QueueEvent] = []
    for what, data in stored:
        try:
            events.append(load_stored_event(data))
        except (ValueError, TypeError):  # msgspec.DecodeError and ValidationError are ValueErrors
            logger.warning("stored event %s cannot be decoded: left out of the history query", what, exc_info=True)
    return events


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

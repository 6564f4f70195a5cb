"""The stable ``QueueEvent`` envelope: snake_case in Python, camelCase on the wire."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Final, Literal

import msgspec

from litestar_queues.clock import utc_now
from litestar_queues.records import new_record_id

__all__ = ("LIFECYCLE_EVENT_TYPES", "SCHEMA_VERSION", "EventScope", "QueueEvent", "QueueEventType")

SCHEMA_VERSION: Final = 1

EventScope = Literal["task", "queue", "worker", "global", "custom"]


class QueueEventType:
    """Names of the events litestar-queues emits itself; any other string is a custom event type."""

    ENQUEUED: Final = "task.enqueued"
    STARTED: Final = "task.started"
    PROGRESS: Final = "task.progress"
    LOG: Final = "task.log"
    EVENT: Final = "task.event"
    RETRYING: Final = "task.retrying"
    COMPLETED: Final = "task.completed"
    FAILED: Final = "task.failed"
    CANCELLED: Final = "task.cancelled"
    STREAM_GAP: Final = "stream.gap"
    """Sent by the stream helpers to a subscriber that fell behind: ``payload["dropped"]`` events were dropped."""


LIFECYCLE_EVENT_TYPES: Final = frozenset(
    {
        QueueEventType.ENQUEUED,
        QueueEventType.STARTED,
        QueueEventType.RETRYING,
        QueueEventType.COMPLETED,
        QueueEventType.FAILED,
        QueueEventType.CANCELLED,
    }
)

_encoder = msgspec.json.Encoder()


class QueueEvent(msgspec.Struct, kw_only=True, rename="camel"):
    """One lifecycle, progress, log or custom event.

    On the wire (``to_json``) field names are camelCase, ``null`` fields are kept so every event has the
    same shape, ``payload`` passes through verbatim, and ``occurredAt`` is RFC 3339 UTC ending in ``Z``.

    ``QueueEvent(type=..., task_id=..., payload=...)`` is enough: ``id`` (a new time-ordered id) and
    ``occurred_at`` (now, aware UTC) are filled in when not given.

    Event histories store the field values by position (``events.history.dump_stored_event``): add a new field
    at the end, with a default, and never reorder, rename the Python name of, or remove one.
    """

    id: str = msgspec.field(default_factory=new_record_id)
    type: str
    scope: EventScope = "task"
    scope_key: str | None = None
    task_id: str | None = None
    task_name: str | None = None
    queue: str | None = None
    worker_id: str | None = None
    """Set for events emitted by worker-driven executions, ``None`` otherwise."""
    execution_backend: str | None = None
    execution_profile: str | None = None
    attempt: int | None = None
    sequence: int | None = None
    """Increases with every event of one task attempt (order by ``attempt`` then ``sequence``)."""
    level: str | None = None
    message: str | None = None
    progress_current: float | None = None
    progress_total: float | None = None
    progress_percent: float | None = None
    actor: str | None = None
    entity: str | None = None
    payload: dict[str, Any] | None = None
    occurred_at: datetime = msgspec.field(default_factory=utc_now)
    event_key: str | None = None
    """Optional dedup key for subscribers; streams fall back to ``id``."""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        """Keep ``occurred_at`` in UTC (the wire form ends in ``Z``).

        Raises:
            ValueError: ``occurred_at`` is naive.
        """
        moment = self.occurred_at
        if moment.tzinfo is not timezone.utc:
            if moment.utcoffset() is None:
                raise ValueError(f"QueueEvent.occurred_at must be timezone-aware, got {moment!r}")
            self.occurred_at = moment.astimezone(timezone.utc)

    @property
    def dedup_key(self) -> str:
        """What subscribers deduplicate on: ``event_key`` when set, else ``id``."""
        return self.event_key or self.id

    def to_json(self) -> bytes:
        """Encode as wire JSON."""
        return _encoder.encode(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> QueueEvent:
        """Decode wire JSON."""
        return msgspec.json.decode(data, type=cls)

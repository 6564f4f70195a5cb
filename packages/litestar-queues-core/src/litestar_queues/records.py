"""The persisted shape of work: statuses and their legal transitions, records, leases and outcomes.

Every backend stores :class:`TaskRecord` values and applies the transitions written down in
:data:`TRANSITIONS`; nothing else decides what a status may become.
"""

from __future__ import annotations

import enum
import random
import re
import threading
import time
from datetime import datetime
from typing import Any

import msgspec

__all__ = (
    "ACTIVE_STATUSES",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "EnqueueOutcome",
    "Lease",
    "LeaseState",
    "Outcome",
    "QueueStatistics",
    "RecordFilter",
    "RecordPage",
    "TaskError",
    "TaskProgress",
    "TaskRecord",
    "TaskStatus",
    "WorkerInfo",
    "as_status",
    "can_transition",
    "due_order",
    "is_record_id",
    "new_record_id",
    "new_record_ids",
)


class TaskStatus(str, enum.Enum):
    """Where a record is in its life."""

    PENDING = "pending"
    """Waiting to be claimed once ``scheduled_at`` is due (new, delayed, or waiting to retry)."""
    RUNNING = "running"
    """Claimed by an owner holding a lease; an attempt is executing."""
    COMPLETED = "completed"
    """Finished successfully; ``result`` holds the return value."""
    FAILED = "failed"
    """The last attempt failed and no retries remain (or the error was not retryable)."""
    CANCELLED = "cancelled"
    """Cancelled before it started, or interrupted while running."""
    EXPIRED = "expired"
    """Never started before ``expires_at``."""


_BY_VALUE: dict[str, TaskStatus] = {status.value: status for status in TaskStatus}


def as_status(value: TaskStatus | str) -> TaskStatus:
    """``TaskStatus(value)`` (a member or its value) at the cost of a dict lookup: the hot paths call it per record.

    Raises:
        ValueError: ``value`` is no status.
    """
    status = _BY_VALUE.get(value)
    return TaskStatus(value) if status is None else status


TERMINAL_STATUSES: frozenset[TaskStatus] = frozenset(
    {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.EXPIRED}
)
"""Statuses a record never leaves by itself. A dedup ``key`` is free again once its record is terminal."""

ACTIVE_STATUSES: frozenset[TaskStatus] = frozenset({TaskStatus.PENDING, TaskStatus.RUNNING})
"""Statuses that hold a dedup ``key``."""

TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    # claim; cancel before start; expiry before start
    TaskStatus.PENDING: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED, TaskStatus.EXPIRED}),
    # finish; interrupt; retry, stale recovery and drain hand-back return to pending
    TaskStatus.RUNNING: frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.PENDING}),
    TaskStatus.COMPLETED: frozenset(),
    # manual retry
    TaskStatus.FAILED: frozenset({TaskStatus.PENDING}),
    TaskStatus.CANCELLED: frozenset({TaskStatus.PENDING}),
    TaskStatus.EXPIRED: frozenset({TaskStatus.PENDING}),
}
"""The legal status changes, in one place."""


def can_transition(current: TaskStatus, new: TaskStatus) -> bool:
    """Return whether ``current`` may become ``new``."""
    return new in TRANSITIONS[current]


_id_lock = threading.Lock()

_last_stamp = 0
"""``unix_ts_ms << 12 | counter`` of the newest id: UUIDv7's timestamp and ``rand_a`` fields as one number."""
_ID_BITS = 1 << 124 | 0b10 << 62
"""The variant bits, and a top bit that makes ``hex()`` print all 31 digits after it."""


def _next_stamps(count: int) -> int:
    """Reserve ``count`` consecutive stamps after the newest one; return the first."""
    global _last_stamp  # noqa: PLW0603 - process-wide monotonic state is the point
    with _id_lock:
        stamp = time.time_ns() // 1_000_000 << 12
        if stamp <= _last_stamp:  # same millisecond (or the clock went back): count on; a full counter borrows
            stamp = _last_stamp + 1
        _last_stamp = stamp + count - 1
    return stamp


def new_record_id() -> str:
    """Return a new time-ordered record id (a UUIDv7 string).

    Ids made by one process sort in creation order even within one millisecond (a 12-bit counter
    fills UUIDv7's ``rand_a`` field), which gives backends a FIFO tie-breaker for free.
    """
    digits = hex(_ID_BITS | _next_stamps(1) << 64 | random.getrandbits(62))  # reseeded in forked children
    # "0x1", 12 digits of milliseconds, 3 of counter, 16 of variant and random bits; the version digit goes between
    return f"{digits[3:11]}-{digits[11:15]}-7{digits[15:18]}-{digits[18:22]}-{digits[22:]}"


def new_record_ids(count: int) -> list[str]:
    """Return ``count`` new record ids in creation order, as ``count`` calls of :func:`new_record_id` would (one
    reservation of their stamps instead of one each: a bulk enqueue makes thousands)."""
    first = _next_stamps(count) if count else 0
    bits = random.getrandbits
    return [
        f"{digits[3:11]}-{digits[11:15]}-7{digits[15:18]}-{digits[18:22]}-{digits[22:]}"
        for digits in [hex(_ID_BITS | stamp << 64 | bits(62)) for stamp in range(first, first + count)]
    ]


_RECORD_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_record_id(value: str) -> bool:
    """Whether ``value`` has the form of every record id: a UUID string in canonical form (lowercase, hyphenated).

    Backends may rely on it (a native UUID column), so the service answers "no such record" for anything else
    without asking the backend.
    """
    return _RECORD_ID.fullmatch(value) is not None


class TaskError(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Why an attempt failed: enough to act on without digging in logs."""

    type: str
    """Qualified name of the exception type, e.g. ``"builtins.ValueError"``."""
    message: str
    traceback: str | None = None
    """The formatted traceback, bounded in size."""


class TaskProgress(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """How far an attempt had got when it last reported progress (``publish_task_progress``).

    Kept on the record (``TaskRecord.progress``) until the next report, through the end of the attempt, so a
    finished record shows how far it got; a manual retry clears it.
    """

    current: float
    total: float | None = None
    percent: float | None = None
    """``current * 100 / total`` rounded to two decimals, when ``total`` is known and not zero."""
    message: str | None = None
    attempt: int = 0
    """The attempt that reported it: compare with ``TaskRecord.attempts`` to tell a retry's progress from the last
    attempt's."""
    updated_at: datetime


class TaskRecord(msgspec.Struct, kw_only=True, gc=False):
    """One unit of work as persisted by a backend.

    Arguments and results are stored as msgspec builtins (JSON types); they are converted back to the
    task's annotated types when the task runs or a result is read. All datetimes are aware UTC.
    """

    id: str
    task_name: str
    queue: str = "default"
    args: list[Any] = msgspec.field(default_factory=list)
    kwargs: dict[str, Any] = msgspec.field(default_factory=dict)
    priority: int = 0
    """Higher runs first among due records."""
    status: TaskStatus = TaskStatus.PENDING
    key: str | None = None
    """Dedup key: at most one active (pending or running) record holds a key."""
    attempts: int = 0
    """Attempts started so far (a claim increments it)."""
    max_retries: int = 0
    """Retries allowed after the first attempt: ``max_retries=2`` means up to three attempts."""
    retry_delay: float = 1.0
    """Base of the exponential retry backoff, in seconds."""
    timeout: float | None = None
    """Seconds an attempt may run before it is stopped and counts as failed."""
    created_at: datetime
    scheduled_at: datetime
    """Not claimed before this moment."""
    expires_at: datetime | None = None
    """A pending record not started by this moment becomes ``expired``."""
    started_at: datetime | None = None
    """When the latest attempt started."""
    finished_at: datetime | None = None
    result: Any = None
    error: TaskError | None = None
    """The latest attempt's error (also kept while a retry is pending)."""
    execution_backend: str = "local"
    execution_profile: str | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    owner: str | None = None
    """Who holds the lease of the running attempt."""
    token: int = 0
    """Fence token: incremented by every claim; a transition must present the current one."""
    lease_expires_at: datetime | None = None
    cancel_requested: bool = False
    """Set by ``cancel`` on a running record; the owner interrupts the attempt."""
    progress: TaskProgress | None = None
    """The latest progress an attempt reported (``QueueBackend.save_progress``), ``None`` until one does."""

    @property
    def lease(self) -> Lease:
        """The fence of the current attempt (meaningful while running)."""
        return Lease(record_id=self.id, owner=self.owner or "", token=self.token)

    @property
    def is_terminal(self) -> bool:
        """Whether the record reached a terminal status."""
        return self.status in TERMINAL_STATUSES


def due_order(record: TaskRecord) -> tuple[int, datetime, str]:
    """The sort key of due records: ``priority`` descending, then ``scheduled_at``, then ``id``."""
    return (-record.priority, record.scheduled_at, record.id)


class Lease(msgspec.Struct, frozen=True, gc=False):
    """The fence a worker presents for every transition of a running record: owner and token."""

    record_id: str
    owner: str
    token: int


class LeaseState(str, enum.Enum):
    """What a lease renewal found."""

    HELD = "held"
    """Still owned; the lease was extended."""
    CANCEL_REQUESTED = "cancel_requested"
    """Still owned and extended, but cancellation was requested: interrupt the attempt."""
    LOST = "lost"
    """No longer owned (recovered by someone else, finished, or deleted): stop the attempt, change nothing."""


class Outcome(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """How a running attempt ends, applied by ``QueueBackend.finish`` under the fence."""

    status: TaskStatus
    """``completed``, ``failed``, ``cancelled``, or ``pending`` (retry, recovery, hand-back)."""
    result: Any = None
    error: TaskError | None = None
    scheduled_at: datetime | None = None
    """With ``pending``: when the record becomes due again (required)."""
    refund_attempt: bool = False
    """With ``pending``: give the attempt back (graceful-shutdown hand-back does not use up a retry)."""
    only_if_lease_expired: bool = False
    """Apply only if the lease has expired at ``now`` (stale recovery must not steal a renewed lease)."""


class EnqueueOutcome(msgspec.Struct, frozen=True, gc=False):
    """The record an enqueue resolved to, and whether it was newly created."""

    record: TaskRecord
    created: bool
    """False when an existing record with the same id, or an active record with the same key, was returned."""

    @property
    def id(self) -> str:
        """The record id."""
        return self.record.id

    @property
    def status(self) -> TaskStatus:
        """The record's status."""
        return self.record.status


class RecordFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which records a query or bulk operation selects; ``None`` means any."""

    status: TaskStatus | None = None
    queue: str | None = None
    task_name: str | None = None


class RecordPage(msgspec.Struct, frozen=True):
    """One page of a query, newest first, and the cursor of the next page (``None`` at the end)."""

    records: list[TaskRecord]
    next_cursor: str | None


class QueueStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """Counts by status and the age of the oldest due pending record."""

    counts: dict[TaskStatus, int]
    """Every status is present (zero when empty)."""
    oldest_pending_at: datetime | None = None
    """``scheduled_at`` of the oldest due pending record."""
    queue: str | None = None

    def oldest_pending_age(self, now: datetime) -> float | None:
        """Seconds the oldest due pending record has waited at ``now``."""
        return None if self.oldest_pending_at is None else max(0.0, (now - self.oldest_pending_at).total_seconds())


class WorkerInfo(msgspec.Struct, kw_only=True):
    """A live worker, as registered with the backend."""

    id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    started_at: datetime
    last_heartbeat_at: datetime
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)

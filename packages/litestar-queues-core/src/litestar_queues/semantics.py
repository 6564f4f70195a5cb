"""The backend contract's record semantics as pure functions, so that a backend is storage and atomicity only.

What a transition makes of a record (claim, renew, transfer, finish, cancel, requeue, expire), which records are
due and in which order, how one enqueue call deduplicates against itself, what a query page and a statistics
answer look like: decided here once, for every backend. Each function takes records, leases and moments and
returns new records or plain values; none does I/O, reads the clock or mutates its arguments.

A backend that keeps whole records (the memory backend, a key-value store, a document column) applies the
transitions directly: read the record, check the fence with :func:`holds`, store what the function returns, all
in one atomic step of its storage. A backend that updates columns in place (SQL, Lua) writes the same rules as
statements; it can still return :func:`finished_record` instead of reading a row back, and build its answers with
:func:`lease_states`, :func:`record_page` and :func:`queue_statistics`. ``docs/writing-a-backend.md`` shows both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TypeGuard

import msgspec

from litestar_queues.errors import DuplicateTaskError
from litestar_queues.records import (
    Lease,
    LeaseState,
    Outcome,
    QueueStatistics,
    RecordFilter,
    RecordPage,
    TaskRecord,
    TaskStatus,
    as_status,
    due_order,
)

__all__ = (
    "FINISH_STATUSES",
    "REQUEUEABLE_STATUSES",
    "cancelled_record",
    "check_outcome",
    "claimed_record",
    "due_order",
    "enqueue_rounds",
    "expired_record",
    "finished_record",
    "holds",
    "is_due",
    "is_expired",
    "lease_expired",
    "lease_expiry",
    "lease_state",
    "lease_states",
    "matches",
    "queue_statistics",
    "record_page",
    "renewed_record",
    "requeue_conflict",
    "requeue_refused",
    "requeued_record",
    "transferred_record",
)

_PENDING = TaskStatus.PENDING
_RUNNING = TaskStatus.RUNNING

FINISH_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, _PENDING})
"""The statuses ``QueueBackend.finish`` may end an attempt with (``pending`` is a retry, a recovery, a hand-back)."""
REQUEUEABLE_STATUSES = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.EXPIRED})
"""The statuses ``QueueBackend.requeue`` puts back to pending (a completed record stays completed)."""


# -- the due rule ----------------------------------------------------------------------------------


def is_due(record: TaskRecord, now: datetime) -> bool:
    """Whether ``claim`` may take ``record`` at ``now``: pending, ``scheduled_at <= now``, not expired at ``now``.

    A due record of a paused queue is still due (``statistics`` counts it); ``claim`` skips the queue.
    """
    expires_at = record.expires_at
    return record.status == _PENDING and record.scheduled_at <= now and (expires_at is None or expires_at > now)


def is_expired(record: TaskRecord, now: datetime) -> bool:
    """Whether ``expire`` ends ``record`` at ``now``: pending with ``expires_at <= now`` (a retry waits pending too)."""
    return record.status == _PENDING and record.expires_at is not None and record.expires_at <= now


def lease_expired(record: TaskRecord, now: datetime) -> bool:
    """Whether ``expired_leases`` lists ``record`` at ``now``: running with ``lease_expires_at <= now``."""
    return record.status == _RUNNING and record.lease_expires_at is not None and record.lease_expires_at <= now


def lease_expiry(now: datetime, lease_seconds: float) -> datetime:
    """The ``lease_expires_at`` a claim, renewal or transfer at ``now`` sets."""
    return now + timedelta(seconds=lease_seconds)


# -- the fence -------------------------------------------------------------------------------------


def holds(record: TaskRecord | None, lease: Lease) -> TypeGuard[TaskRecord]:
    """Whether ``lease`` is the fence of ``record``: it is running, and owner and token match.

    Every transition of a running record (renew, finish, transfer, progress) applies only when this holds, and
    then changes nothing else.
    """
    return (
        record is not None
        and record.token == lease.token
        and record.status == _RUNNING
        and record.owner == lease.owner
        and record.id == lease.record_id
    )


def lease_state(record: TaskRecord | None, lease: Lease) -> LeaseState:
    """What ``renew`` reports for ``lease`` given the stored ``record`` (extend the lease only unless ``LOST``)."""
    if not holds(record, lease):
        return LeaseState.LOST
    return LeaseState.CANCEL_REQUESTED if record.cancel_requested else LeaseState.HELD


def lease_states(leases: Sequence[Lease], held: Mapping[str, bool]) -> dict[str, LeaseState]:
    """``renew``'s answer from ``held``: ``{record_id: cancel_requested}`` of the leases whose fence matched.

    For storage that extends every matching lease in one statement or script and reports which matched.
    """
    states: dict[str, LeaseState] = {}
    for lease in leases:
        cancel_requested = held.get(lease.record_id)
        if cancel_requested is None:
            states[lease.record_id] = LeaseState.LOST
        else:
            states[lease.record_id] = LeaseState.CANCEL_REQUESTED if cancel_requested else LeaseState.HELD
    return states


# -- transitions -----------------------------------------------------------------------------------


def claimed_record(pending: TaskRecord, *, owner: str, now: datetime, lease_expires_at: datetime) -> TaskRecord:
    """Return what :meth:`QueueBackend.claim` makes of the ``pending`` record (for owner ``owner`` at ``now``)."""
    return msgspec.structs.replace(
        pending,
        status=_RUNNING,
        owner=owner,
        token=pending.token + 1,
        attempts=pending.attempts + 1,
        started_at=now,
        lease_expires_at=lease_expires_at,
    )


def renewed_record(running: TaskRecord, lease_expires_at: datetime) -> TaskRecord:
    """Return ``running`` with its lease extended (only after :func:`holds`)."""
    return msgspec.structs.replace(running, lease_expires_at=lease_expires_at)


def transferred_record(running: TaskRecord, *, owner: str, lease_expires_at: datetime) -> TaskRecord:
    """Return what ``transfer`` makes of ``running`` (only after :func:`holds`): new owner, token + 1, new lease."""
    return msgspec.structs.replace(running, owner=owner, token=running.token + 1, lease_expires_at=lease_expires_at)


def check_outcome(outcome: Outcome) -> TaskStatus:
    """Return the status ``outcome`` ends an attempt with, if :meth:`QueueBackend.finish` may apply it.

    Raises:
        ValueError: The status is ``running`` or ``expired``, or ``pending`` without ``scheduled_at``.
    """
    status = as_status(outcome.status)
    if status not in FINISH_STATUSES:
        msg = f"finish cannot end an attempt as {status.value!r}"
        raise ValueError(msg)
    if status is _PENDING and outcome.scheduled_at is None:
        msg = "finish with status 'pending' needs outcome.scheduled_at"
        raise ValueError(msg)
    return status


def finished_record(claimed: TaskRecord, outcome: Outcome, now: datetime) -> TaskRecord:
    """Return what :meth:`QueueBackend.finish` makes of ``claimed`` (the running record) with ``outcome``.

    A ``pending`` outcome of a record with ``cancel_requested`` ends it ``cancelled`` (a cancel request wins
    over a retry), so for a ``pending`` outcome pass the stored record, not the one returned by the claim.
    Check the fence (:func:`holds`), ``only_if_lease_expired`` (:func:`lease_expired`) and the outcome
    (:func:`check_outcome`) first.
    """
    status = as_status(outcome.status)
    if status is _PENDING and claimed.cancel_requested:
        status = TaskStatus.CANCELLED
    if status is _PENDING:
        return msgspec.structs.replace(
            claimed,
            status=status,
            scheduled_at=outcome.scheduled_at or claimed.scheduled_at,
            error=outcome.error,
            attempts=max(0, claimed.attempts - 1) if outcome.refund_attempt else claimed.attempts,
            owner=None,
            lease_expires_at=None,
            cancel_requested=False,
        )
    return msgspec.structs.replace(
        claimed,
        status=status,
        finished_at=now,
        result=outcome.result,
        error=outcome.error,
        owner=None,
        lease_expires_at=None,
        cancel_requested=False,
    )


def cancelled_record(record: TaskRecord, now: datetime) -> TaskRecord:
    """Return what ``cancel`` makes of ``record``: a pending one ends ``cancelled`` at ``now`` (freeing its key), a
    running one gets ``cancel_requested`` (its owner ends it), a terminal one is returned as it is."""
    status = as_status(record.status)
    if status is _PENDING:
        return msgspec.structs.replace(record, status=TaskStatus.CANCELLED, finished_at=now)
    if status is _RUNNING and not record.cancel_requested:
        return msgspec.structs.replace(record, cancel_requested=True)
    return record


def requeued_record(record: TaskRecord, now: datetime) -> TaskRecord:
    """Return what ``requeue`` makes of ``record``: a failed, cancelled or expired one is pending again, due at
    ``now``, with no attempts, expiry, finish time, result, error, progress or cancel request (a manual retry
    starts afresh and must not expire at once); any other is returned as it is.

    The key rule is the backend's to check in the same atomic step: see :func:`requeue_conflict`.
    """
    if as_status(record.status) not in REQUEUEABLE_STATUSES:
        return record
    return msgspec.structs.replace(
        record,
        status=_PENDING,
        scheduled_at=now,
        attempts=0,
        expires_at=None,
        finished_at=None,
        result=None,
        error=None,
        progress=None,
        cancel_requested=False,
    )


def requeue_conflict(record: TaskRecord, holder_id: str | None) -> DuplicateTaskError | None:
    """The error ``requeue`` raises when another active record (``holder_id``, the active holder of ``record``'s
    key or ``None``) holds the key of the requeueable ``record``, else ``None``."""
    if holder_id is None or holder_id == record.id or as_status(record.status) not in REQUEUEABLE_STATUSES:
        return None
    return requeue_refused(record.id, holder_id=holder_id)


def requeue_refused(record_id: str, *, holder_id: str | None = None) -> DuplicateTaskError:
    """The ``DuplicateTaskError`` of a ``requeue`` of ``record_id`` whose key another active record holds
    (``holder_id`` when the storage knows which, e.g. not from a unique-constraint violation)."""
    holder = "another active record" if holder_id is None else f"active record {holder_id}"
    return DuplicateTaskError(f"cannot requeue {record_id}: {holder} holds its key")


def expired_record(pending: TaskRecord, now: datetime) -> TaskRecord:
    """Return what ``expire`` makes of a record :func:`is_expired` at ``now``: ``expired``, finished at ``now``."""
    return msgspec.structs.replace(pending, status=TaskStatus.EXPIRED, finished_at=now)


# -- enqueue ---------------------------------------------------------------------------------------


def enqueue_rounds(records: Sequence[TaskRecord]) -> list[list[int]]:
    """Group the positions of one enqueue call's records so that no group holds two records sharing an id or a key.

    Within one call a later record resolves to an earlier one with the same id or key (the contract's sequential
    semantics). A backend that inserts many records in one statement inserts the groups one after another, each
    after the previous one is settled; a backend that handles records one by one needs no groups.
    """
    keys = [record.key for record in records if record.key is not None]
    if len(keys) == len(set(keys)) and len({record.id for record in records}) == len(records):
        return [list(range(len(records)))] if records else []
    rounds: list[list[int]] = []
    round_of_id: dict[str, int] = {}
    round_of_key: dict[str, int] = {}
    for position, record in enumerate(records):
        number = round_of_id.get(record.id, -1) + 1
        if record.key is not None:
            number = max(number, round_of_key.get(record.key, -1) + 1)
        if number == len(rounds):
            rounds.append([])
        rounds[number].append(position)
        round_of_id[record.id] = number
        if record.key is not None:
            round_of_key[record.key] = number
    return rounds


# -- reading ---------------------------------------------------------------------------------------


def matches(record: TaskRecord, where: RecordFilter) -> bool:
    """Whether ``record`` has every field ``where`` sets (``None`` means any)."""
    return (
        (where.status is None or as_status(record.status) is as_status(where.status))
        and (where.queue is None or record.queue == where.queue)
        and (where.task_name is None or record.task_name == where.task_name)
    )


def record_page(newest_first: list[TaskRecord], limit: int) -> RecordPage:
    """``query``'s page from up to ``limit + 1`` matching records, newest first (``id`` descending): ask storage for
    one more than the page holds, and the extra one says whether another page follows. ``limit <= 0`` gives an
    empty last page whatever was passed."""
    if limit <= 0:
        return RecordPage([], None)
    if len(newest_first) > limit:
        page = newest_first[:limit]
        return RecordPage(page, page[-1].id)
    return RecordPage(list(newest_first), None)


def queue_statistics(
    counts: Mapping[TaskStatus, int] | Mapping[str, int] | Iterable[tuple[TaskStatus | str, int]],
    *,
    oldest_pending_at: datetime | None,
    queue: str | None,
    count_limit: int | None = None,
) -> QueueStatistics:
    """``statistics``' answer: a count for every status (``0`` for the missing ones, adding up repeated ones), each
    capped at ``count_limit + 1`` when ``count_limit`` is given, the oldest due ``scheduled_at`` and ``queue``.

    ``counts`` maps statuses or their values to counts (or is pairs of them, e.g. per queue).
    """
    filled = dict.fromkeys(TaskStatus, 0)
    for status, count in counts.items() if isinstance(counts, Mapping) else counts:
        filled[as_status(status)] += count
    if count_limit is not None:
        filled = {status: min(count, count_limit + 1) for status, count in filled.items()}
    return QueueStatistics(counts=filled, oldest_pending_at=oldest_pending_at, queue=queue)

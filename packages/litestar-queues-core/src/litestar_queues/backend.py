"""The storage contract every queue backend implements.

A backend owns only primitives that must be atomic where the data lives; every semantic decision
(retry policy, schedules, events, timeouts) is made by the core above it. The conformance suite in
``litestar_queues.testing`` checks exactly the behaviour written in these docstrings (``docs/conformance.md``
lists the tests of every rule).

Conventions shared by every method:

* ``now`` is passed in by the caller (the core's injectable clock); backends never read the wall
  clock for record semantics. All datetimes are aware UTC.
* Ordering of due records: ``priority`` descending, then ``scheduled_at`` ascending, then ``id``
  ascending (ids are time-ordered, so this is FIFO among equals).
* A record is *due* when ``status == pending`` and ``scheduled_at <= now`` and it has not expired
  (``expires_at`` is ``None`` or ``> now``). A due record of a *paused* queue (``pause_queue``) stays due, but
  ``claim`` leaves it where it is until the queue is resumed.
* Every transition of a running record presents a :class:`~litestar_queues.records.Lease` (the
  fence). It applies only if the record is ``running`` with the same ``owner`` and ``token``;
  otherwise it changes nothing.
* Records returned are snapshots: mutating them changes nothing stored.
* Record ids are UUID strings in canonical form (36 characters, lowercase hex and hyphens), time-ordered
  UUIDv7 as made by :func:`~litestar_queues.records.new_record_id`. Every record id the core passes in has
  that form, also the ids of records that do not exist, so a native UUID column can store them (its byte
  order is their string order). Keys, queue and task names, owners, worker ids and lock names are free text
  within the core's limits (:mod:`litestar_queues.limits`: at most 255 characters, no NUL character).
* A stored record that cannot be decoded is decoded field by field with
  :func:`~litestar_queues.salvage.salvage_record` (its ``error`` names the broken fields) and returned like any
  other, never failing the whole call; ``claim`` and ``claim_record`` fail it under its fence instead of returning
  it (:func:`~litestar_queues.salvage.isolate_undecodable`, ``isolate_undecodable_record``) and return the rest.
* ``limit <= 0`` selects nothing: ``claim`` and ``expired_leases`` return ``[]``, ``expire``, ``prune`` and
  ``prune_events`` return ``0`` and ``query`` and ``query_events`` an empty last page; nothing changes.
* Where a method names an error (``DuplicateTaskError``, ``UnsupportedOperation``), raise exactly that, not
  the driver's own exception (a unique-constraint violation is not a ``DuplicateTaskError``).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import ClassVar, Protocol, runtime_checkable

from litestar_queues.errors import UnsupportedOperation
from litestar_queues.events.envelope import QueueEvent
from litestar_queues.events.history import EventFilter, EventPage
from litestar_queues.records import (
    EnqueueOutcome,
    Lease,
    LeaseState,
    Outcome,
    QueueStatistics,
    RecordFilter,
    RecordPage,
    TaskProgress,
    TaskRecord,
    WorkerInfo,
)
from litestar_queues.semantics import check_outcome, claimed_record, finished_record

__all__ = ("BackendConfig", "Capability", "QueueBackend", "check_outcome", "claimed_record", "finished_record")


class Capability(str, enum.Enum):
    """Optional behaviour a backend may declare in ``QueueBackend.capabilities``."""

    PUSH_WAKEUP = "push_wakeup"
    """``wait_for_work`` returns promptly when work may have become available (not just on timeout)."""
    FINISH_WAKEUP = "finish_wakeup"
    """``wait_for_finish`` returns promptly when a record may have reached a terminal status."""
    TRANSFER = "transfer"
    """``transfer`` hands a running attempt to another owner (execution targets that run attempts elsewhere)."""
    TRANSACTIONAL_ENQUEUE = "transactional_enqueue"
    """``enqueue_within`` writes records inside the caller's open transaction, on the caller's own session."""
    EVENT_HISTORY = "event_history"
    """``append_events``, ``query_events`` and ``prune_events`` keep a durable history of queue events."""


class QueueBackend(ABC):
    """Abstract base of storage backends. Use as an async context manager (``open``/``close``)."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    """What optional behaviour this backend implements. Undeclared operations raise ``UnsupportedOperation``."""

    name: ClassVar[str] = "backend"
    """Short name used in logs and the CLI."""

    split_claims: bool = False
    """A hint for workers: a claim that could fill every free slot takes half of them, so that the next claim is
    in flight while its batch starts. Worth it where a claim's round trip mostly waits for the server (a SQL
    transaction); on Redis the extra claim cost more than the overlap saved."""

    local_only: bool = False
    """Storage that only this process (memory) or this machine (SQLite) can reach: an execution target that runs
    attempts in other machines refuses it at startup."""

    async def __aenter__(self) -> QueueBackend:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect, create or check storage. Called once before any other method."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Records persist (except for in-memory storage)."""

    # -- writing work ------------------------------------------------------------------------------

    @abstractmethod
    async def enqueue(self, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        """Insert records, deduplicating, and return one outcome per input in input order.

        For each record, atomically:

        1. if a record with the same ``id`` exists (any status), return it with ``created=False``;
        2. else if ``key`` is set and an *active* (pending or running) record holds that key, return
           that record with ``created=False``;
        3. else store the record exactly as given and return it with ``created=True``.

        Concurrent enqueues of the same key from many callers create exactly one record. Within one
        call, a later record whose key an earlier record of the same call took resolves to the earlier
        one. Inserted records are visible to ``claim`` as soon as this returns.
        """

    @abstractmethod
    async def get(self, record_id: str) -> TaskRecord | None:
        """Return the record with ``record_id``, or ``None``."""

    @abstractmethod
    async def get_by_key(self, key: str) -> TaskRecord | None:
        """Return the active record holding ``key``.

        Else the most recently created record with that key (terminal): greatest ``created_at``, then greatest
        ``id``. Else ``None``. The active holder wins even over terminal records created after it (a requeued
        record holds its key again), and "most recently created" is not "last finished" nor "last stored".
        """

    # -- claiming and running ----------------------------------------------------------------------

    @abstractmethod
    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_seconds: float
    ) -> list[TaskRecord]:
        """Atomically claim up to ``limit`` due records from ``queues``, in due order, and return them.

        Each claimed record becomes ``running`` with ``owner``, ``token + 1``, ``attempts + 1``,
        ``started_at = now`` and ``lease_expires_at = now + lease_seconds``. No record is ever returned
        to two claimers, however many claim concurrently. Records not yet due, expired, of other queues or of
        paused queues (``pause_queue``) are never returned: a paused queue among ``queues`` is skipped and the
        others are claimed as usual. ``limit <= 0`` returns ``[]``. The returned list is in due order.
        """

    @abstractmethod
    async def claim_record(
        self, record_id: str, *, owner: str, now: datetime, lease_seconds: float
    ) -> TaskRecord | None:
        """Claim one specific ``pending`` record whatever its ``scheduled_at`` (inline and remote execution).

        Same transition as ``claim``. A pause of its queue does not apply: this claim names its record. Returns
        ``None`` (changing nothing) if the record does not exist or is not pending.
        """

    @abstractmethod
    async def renew(self, leases: Sequence[Lease], *, now: datetime, lease_seconds: float) -> dict[str, LeaseState]:
        """Extend each held lease to ``now + lease_seconds`` and report its state, keyed by record id.

        ``HELD`` or ``CANCEL_REQUESTED`` (held, but ``cancel`` was called on the running record) when the
        fence matches — the lease is extended in both cases. ``LOST`` when it does not match or the record
        is gone; a lost lease changes nothing.
        """

    @abstractmethod
    async def finish(
        self, lease: Lease, outcome: Outcome, *, now: datetime, claimed: TaskRecord | None = None
    ) -> TaskRecord | None:
        """End a running attempt under the fence and return the updated record, or ``None`` if the fence failed.

        ``claimed``, when given, is the record as claimed under ``lease``: for a terminal outcome a backend
        may then return :func:`finished_record` of it instead of reading the stored row back (a running
        record changes only in fields that finishing resets), and must return the same record either way.
        What a ``pending`` outcome makes depends on the stored ``cancel_requested``, which ``claimed`` does
        not know.

        With a matching fence (and, when ``outcome.only_if_lease_expired``, ``lease_expires_at <= now``):

        * ``completed`` / ``failed`` / ``cancelled``: set the status, ``finished_at = now``, ``result`` and
          ``error`` from the outcome; the dedup key becomes free.
        * ``pending``: set ``scheduled_at = outcome.scheduled_at`` and ``error`` from the outcome,
          decrement ``attempts`` when ``outcome.refund_attempt``; ``started_at`` keeps the last start;
          the key stays held.
        * **A cancel request wins over a retry**: a ``pending`` outcome (a retry, a stale recovery, a
          shutdown hand-back) of a record with ``cancel_requested`` ends it ``cancelled`` instead, like a
          ``cancelled`` outcome with the outcome's ``error``: ``finished_at = now``, no ``result``,
          ``attempts`` and ``scheduled_at`` unchanged, the key becomes free.

        In every case ``owner`` and ``lease_expires_at`` become ``None`` and ``cancel_requested`` becomes
        false. A failed fence changes nothing at all.
        """

    async def transfer(self, lease: Lease, *, owner: str, now: datetime, lease_seconds: float) -> TaskRecord | None:
        """Under the fence, hand the running attempt to ``owner``; return the record after the change ([TRANSFER]).

        With a matching fence: ``owner`` becomes ``owner``, ``token`` increments (so ``lease`` is no longer
        current), ``lease_expires_at = now + lease_seconds``; ``attempts``, ``started_at``, ``cancel_requested``
        and every other field are kept. A failed fence changes nothing and returns ``None``, so of two transfers
        presenting the same lease at most one applies. Remote execution uses it to give an attempt to the process
        that runs it elsewhere.
        """
        raise UnsupportedOperation(f"{type(self).__name__} does not declare {Capability.TRANSFER.value}")

    @abstractmethod
    async def save_progress(self, updates: Sequence[tuple[Lease, TaskProgress]]) -> None:
        """Store the latest progress of running attempts, each under its fence.

        For each ``(lease, progress)`` in order: when the fence matches, the record's ``progress`` becomes
        ``progress`` (a later update of the same record in the same call wins); otherwise nothing changes. No other
        field changes. ``progress`` stays on the record through ``finish`` (a finished record shows how far it
        got) and later claims, until the next update; ``requeue`` clears it.
        """

    @abstractmethod
    async def expired_leases(self, *, now: datetime, limit: int) -> list[TaskRecord]:
        """Return up to ``limit`` running records whose ``lease_expires_at <= now`` (stale recovery candidates).

        In any order.
        """

    # -- control -----------------------------------------------------------------------------------

    @abstractmethod
    async def cancel(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Cancel a record and return it after the change (``None`` if it does not exist).

        ``pending`` becomes ``cancelled`` with ``finished_at = now`` (the key becomes free); ``running``
        gets ``cancel_requested = True`` and stays running until its owner finishes it; a terminal record
        is returned unchanged.
        """

    @abstractmethod
    async def requeue(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Put a ``failed``, ``cancelled`` or ``expired`` record back to ``pending`` (manual retry).

        Sets ``scheduled_at = now``, ``attempts = 0``, clears ``expires_at`` (a manual retry must not expire
        at once), ``finished_at``, ``result``, ``error``, ``progress`` and ``cancel_requested``. Returns the updated
        record; ``None`` if it does not exist; an active or completed record is returned unchanged. Raises
        ``DuplicateTaskError`` (and changes nothing) if another active record now holds its key.

        A requeue makes work available: it wakes ``wait_for_work`` on the record's queue ([PUSH_WAKEUP]).
        """

    @abstractmethod
    async def expire(self, *, now: datetime, limit: int) -> int:
        """Mark up to ``limit`` pending records with ``expires_at <= now`` as ``expired``; return how many.

        Expired records get ``finished_at = now`` and free their key. A record waiting for a retry is pending
        too: it expires like one that never started.
        """

    @abstractmethod
    async def prune(self, *, finished_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` terminal records with ``finished_at < finished_before``; return how many."""

    # -- reading -----------------------------------------------------------------------------------

    @abstractmethod
    async def query(self, where: RecordFilter, *, limit: int, cursor: str | None = None) -> RecordPage:
        """Return records matching ``where``, newest first (``id`` descending), at most ``limit`` per page.

        A record matches when it has every field ``where`` sets (``status`` and ``queue`` and ``task_name``;
        ``None`` means any). ``cursor`` is the ``next_cursor`` of the previous page (an opaque string); iterating
        pages visits every matching record exactly once when nothing changes meanwhile; ``next_cursor`` is
        ``None`` on the last page.
        """

    @abstractmethod
    async def statistics(
        self, *, now: datetime, queue: str | None = None, count_limit: int | None = None
    ) -> QueueStatistics:
        """Count records by status (every status present) and find the oldest due pending record.

        For one ``queue``, or all queues when ``None`` (the result's ``queue`` is the argument). ``counts`` has
        every :class:`~litestar_queues.records.TaskStatus` as a key, ``0`` when none. ``oldest_pending_at`` is the
        smallest ``scheduled_at`` of the records *due* at ``now`` (whatever their priority, paused queue or not),
        or ``None`` when no record is due: delayed, expired and running records never count, even when they are
        all there is.

        With ``count_limit`` (``>= 0``) counting may stop there: a status with more than ``count_limit`` records
        is reported as exactly ``count_limit + 1`` ("more than ``count_limit``"), so that a million finished
        records need not be counted to say so; a count up to ``count_limit`` is exact. ``None`` counts everything.
        """

    # -- pausing queues ----------------------------------------------------------------------------

    @abstractmethod
    async def pause_queue(self, queue: str, *, now: datetime) -> bool:
        """Pause ``queue``: ``claim`` takes none of its records until ``resume_queue``. Return whether this call
        paused it (``False``: it was paused already, and its ``paused_at`` stays that of the first pause).

        The pause is stored like the records: it holds for every backend over the same storage and outlives the
        connection and the process that made it. A queue is named exactly (pausing ``"mail"`` pauses neither
        ``"mail.bulk"`` nor ``"mailx"``) and can be paused before it has any record. A pause gates claims only:
        ``enqueue`` and ``requeue`` still make records of the queue pending, running records renew and finish,
        ``expire``, ``cancel``, ``prune``, ``claim_record``, ``query`` and ``statistics`` work as always.

        A pause wakes nobody: nothing became claimable, and a waiting claimer's next ``claim`` skips the queue.
        """

    @abstractmethod
    async def resume_queue(self, queue: str) -> bool:
        """Lift the pause of ``queue``; return whether it was paused.

        Its due records are claimable again at once. A resume makes work available: it wakes ``wait_for_work``
        on the queue ([PUSH_WAKEUP]).
        """

    @abstractmethod
    async def paused_queues(self) -> dict[str, datetime]:
        """Every paused queue, with the ``now`` of the call that paused it."""

    # -- optional event history --------------------------------------------------------------------

    async def append_events(self, events: Sequence[QueueEvent]) -> None:
        """Store ``events`` in the history, atomically as one batch where the storage allows ([EVENT_HISTORY]).

        Each event is stored exactly as given: every field comes back from ``query_events`` (``occurred_at`` to
        the microsecond, ``payload`` verbatim, ``None`` fields as ``None``). An event whose ``id`` is already
        stored, or appears earlier in the same call, is not stored again (a batch sent twice stores nothing
        twice). Stored events are visible to ``query_events`` as soon as this returns. Event ids, types, task ids
        and queue names are free text within the core's limits (at most 255 characters, no NUL character);
        ``sequence`` fits in a signed 64-bit integer.
        """
        raise UnsupportedOperation(f"{type(self).__name__} does not declare {Capability.EVENT_HISTORY.value}")

    @property
    def stores_progress_with_events(self) -> bool:
        """Whether ``append_events_with_progress`` stores both in one round trip (then the history writer takes the
        progress of ``task.progress`` events with them; otherwise progress is saved on its own, beside)."""
        return False

    async def append_events_with_progress(
        self, events: Sequence[QueueEvent], progress: Sequence[tuple[Lease, TaskProgress]]
    ) -> None:
        """Store ``events`` as ``append_events`` does and ``progress`` as ``save_progress`` does, in one round trip
        where the backend can ([EVENT_HISTORY]; the history writer's call, so a progress report and its
        ``task.progress`` event share a batch). Either part may be empty. This default stores the events, then the
        progress; a failure of either raises.
        """
        if events:
            await self.append_events(events)
        if progress:
            await self.save_progress(progress)

    async def query_events(
        self, where: EventFilter, *, limit: int, cursor: str | None = None, newest_first: bool = False
    ) -> EventPage:
        """Return stored events matching ``where`` in history order, at most ``limit`` per page ([EVENT_HISTORY]).

        The order is the events' position ``(occurred_at, sequence, id)`` ascending
        (:func:`~litestar_queues.events.history.event_position`: an event without a ``sequence`` counts as ``0``;
        ids compare as strings, code point by code point), or descending with ``newest_first``. An event matches
        when it has every field ``where`` sets (``task_id``, ``type``, ``queue``; ``since <= occurred_at <
        before``); ``None`` means any.

        ``cursor`` is the ``next_cursor`` of the previous page. A cursor is a position, made with
        :func:`~litestar_queues.events.history.event_cursor` (normally of the page's last event); the next page
        holds the matching events after it in the page order, so iterating pages visits every matching event
        exactly once, even when events are appended or pruned meanwhile at positions the pages already passed.
        ``next_cursor`` is ``None`` on the last page. A page may hold fewer than ``limit`` events while more follow
        (a backend that bounds the work of one call); ``limit <= 0`` returns an empty last page.
        """
        raise UnsupportedOperation(f"{type(self).__name__} does not declare {Capability.EVENT_HISTORY.value}")

    async def prune_events(self, *, occurred_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` stored events with ``occurred_at < occurred_before``, oldest first ([EVENT_HISTORY]).

        "Oldest first" is history order: of the events old enough, those with the smallest positions go. Returns
        how many were deleted; ``limit <= 0`` deletes nothing. Retention calls it in bounded batches.
        """
        raise UnsupportedOperation(f"{type(self).__name__} does not declare {Capability.EVENT_HISTORY.value}")

    # -- workers and maintenance -------------------------------------------------------------------

    @abstractmethod
    async def register_worker(self, info: WorkerInfo, *, ttl_seconds: float) -> None:
        """Insert or replace ``info``.

        A worker not registered again within ``ttl_seconds`` of its ``last_heartbeat_at`` is gone.
        """

    @abstractmethod
    async def remove_worker(self, worker_id: str) -> None:
        """Forget a worker (on clean shutdown)."""

    @abstractmethod
    async def list_workers(self, *, now: datetime) -> list[WorkerInfo]:
        """Return live workers (registered, within their ttl at ``now``), ordered by id."""

    @abstractmethod
    async def acquire_lock(self, name: str, *, owner: str, ttl_seconds: float, now: datetime) -> bool:
        """Take or renew the named lock for ``ttl_seconds``; ``True`` if ``owner`` holds it afterwards.

        A lock held by another owner and not expired at ``now`` is not taken. Used so one worker at a
        time runs maintenance.
        """

    @abstractmethod
    async def release_lock(self, name: str, *, owner: str) -> None:
        """Release the named lock if ``owner`` holds it."""

    # -- optional: enqueue inside the caller's transaction ------------------------------------------

    async def enqueue_within(self, session: object, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        """Like :meth:`enqueue`, inside the caller's open transaction on ``session`` ([TRANSACTIONAL_ENQUEUE]).

        ``session`` is the caller's session (or connection) of the database library the backend is built on, on
        the backend's own database. The records are written in that transaction and the backend never commits
        it: they become visible to ``claim`` (and wake waiters) only when the caller commits, and a rollback
        leaves no record and frees their keys. Deduplication is ``enqueue``'s, against committed records and
        those of the same transaction.
        """
        raise UnsupportedOperation(f"{type(self).__name__} does not declare {Capability.TRANSACTIONAL_ENQUEUE.value}")

    def after_commit(self, session: object, callback: Callable[[], None]) -> bool:
        """Arrange for ``callback()`` to run once the current transaction of ``session`` commits, never if it rolls
        back; ``False`` if the backend cannot tell (then ``callback`` is never called)."""
        del session, callback
        return False

    # -- optional push -----------------------------------------------------------------------------

    async def wait_for_work(self, queues: Sequence[str], *, timeout: float) -> None:
        """Return when work may be available on ``queues`` or after ``timeout`` seconds ([PUSH_WAKEUP]).

        A hint only: callers claim afterwards and must not assume work exists. It must return promptly (well
        before ``timeout``) after every transition that makes a record of any one of ``queues`` pending, made
        through this backend or another one over the same storage: an ``enqueue`` that creates it, a ``finish``
        with a ``pending`` outcome (a retry, a stale recovery, a shutdown hand-back) and a ``requeue``; and after a
        ``resume_queue`` of one of ``queues``. Records of a paused queue are no work: whatever they are, they never
        end a wait at once (nor again and again), and a transition that makes one pending does not end it either
        (an enqueue into a paused queue wakes nobody: no one could claim it).

        A record that is pending but not yet due falls due by time passing, which nothing announces: polling
        (the caller's next wait) finds it, and a backend may also return at its ``scheduled_at``. A wait may
        return early for other reasons (its first wait after subscribing, a reconnect, work on another queue,
        work another claimer took first, a due record already waiting on ``queues`` — so a caller leaves out
        queues it cannot claim from), but not at once again and again while nothing changes: with no record due
        on ``queues`` and nothing happening, a wait lasts about ``timeout``.
        """
        raise UnsupportedOperation(f"{type(self).__name__} does not declare {Capability.PUSH_WAKEUP.value}")

    async def wait_for_finish(self, record_id: str, *, timeout: float) -> None:
        """Return when ``record_id`` may have become terminal, or after ``timeout`` seconds ([FINISH_WAKEUP]).

        A hint only: callers read the record afterwards. It returns at once when the record is already terminal
        or does not exist (check *after* subscribing, or a transition racing the subscription is missed), and
        promptly after every transition that makes it terminal, made through this backend or another one over
        the same storage: a ``finish`` with a terminal outcome (completed, failed, cancelled) or with a ``pending``
        one that a cancel request turns into ``cancelled``, a ``cancel`` of the pending record, an ``expire``. It
        may return early for other reasons (a reconnect, another transition of the record), but not at once again
        and again: while the record stays active and nothing happens to it, a wait lasts about ``timeout``.
        """
        raise UnsupportedOperation(f"{type(self).__name__} does not declare {Capability.FINISH_WAKEUP.value}")


@runtime_checkable
class BackendConfig(Protocol):
    """A typed backend configuration: ``QueueConfig(queue_backend=RedisBackendConfig(...))``."""

    def create_backend(self) -> QueueBackend:
        """Build the (unopened) backend this configuration describes."""
        ...

"""The storage contract on top of a SQL family's statements: what every SQL backend does the same way.

A SQL backend (SQLSpec, Advanced Alchemy) supplies a :class:`RecordStore` (its statements for one database family,
through its own library) and its lifecycle; :class:`SQLQueueBackend` turns the store into a
:class:`~litestar_queues.backend.QueueBackend`: argument checks, lease arithmetic, due order, paging, statistics,
the worker registry's and progress's encoding, the event history over an
:class:`~litestar_queues.sql.events.EventStore`, and PostgreSQL push wakeups through one
:class:`NotificationListener`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

from litestar_queues.backend import Capability, QueueBackend
from litestar_queues.clock import utc_now
from litestar_queues.errors import UnsupportedOperation
from litestar_queues.events.envelope import QueueEvent
from litestar_queues.events.history import HISTORY_SCAN_WINDOW, EventFilter, EventPage
from litestar_queues.records import (
    TERMINAL_STATUSES,
    EnqueueOutcome,
    Lease,
    LeaseState,
    Outcome,
    QueueStatistics,
    RecordFilter,
    RecordPage,
    TaskProgress,
    TaskRecord,
    TaskStatus,
    WorkerInfo,
    as_status,
    due_order,
)
from litestar_queues.salvage import isolate_undecodable, isolate_undecodable_record
from litestar_queues.semantics import check_outcome, lease_expiry, lease_states, queue_statistics, record_page
from litestar_queues.sql.events import EventStore, query_event_page
from litestar_queues.sql.listener import ListenDriver, NotificationListener
from litestar_queues.sql.rows import decode_worker, encode_json, encode_worker
from litestar_queues.waiters import Waiters

__all__ = ("RecordStore", "SQLQueueBackend")

_PUSH = frozenset({Capability.PUSH_WAKEUP, Capability.FINISH_WAKEUP})
_TERMINAL_VALUES = frozenset(status.value for status in TERMINAL_STATUSES)
_WORKER_ROW_GRACE = timedelta(hours=1)
"""Worker rows are deleted this long after they expired (the registry stays small without a sweeper)."""


def _encoded_progress(updates: Sequence[tuple[Lease, TaskProgress]]) -> list[tuple[Lease, str]]:
    """The last progress of each fence in ``updates``, as JSON."""
    latest = {(lease.record_id, lease.owner, lease.token): (lease, progress) for lease, progress in updates}
    return [(lease, encode_json(progress)) for lease, progress in latest.values()]


class RecordStore(Protocol):
    """The statements of one SQL family on the tasks, workers, locks and pauses tables (times are aware UTC); the events
    table has an :class:`~litestar_queues.sql.events.EventStore` of its own."""

    async def enqueue(self, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        """Insert deduplicating (see :func:`~litestar_queues.sql.enqueue.enqueue_records`); outcomes in order."""
        ...

    async def get(self, record_id: str) -> TaskRecord | None:
        """The record with ``record_id``, or ``None``."""
        ...

    async def get_by_key(self, key: str) -> TaskRecord | None:
        """The active holder of ``key``, else the most recently created record with it."""
        ...

    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_expires_at: datetime
    ) -> list[TaskRecord]:
        """Claim up to ``limit`` due records of ``queues`` (distinct, at least one; ``limit`` positive) that are not
        paused, in any order."""
        ...

    async def claim_record(
        self, record_id: str, *, owner: str, now: datetime, lease_expires_at: datetime
    ) -> TaskRecord | None:
        """Claim the pending record ``record_id`` whatever its ``scheduled_at``."""
        ...

    async def transfer(self, lease: Lease, *, owner: str, lease_expires_at: datetime) -> TaskRecord | None:
        """Hand the attempt held by ``lease`` to ``owner`` (token + 1, new lease); the record, or ``None``."""
        ...

    async def renew(self, leases: Sequence[Lease], *, lease_expires_at: datetime) -> dict[str, bool]:
        """Extend the leases whose fence matches; ``{record_id: cancel_requested}`` of those."""
        ...

    async def save_progress(self, updates: Sequence[tuple[Lease, str]]) -> None:
        """Set ``progress`` (JSON) of each running record whose fence matches (at most one update per fence)."""
        ...

    def finish(
        self, lease: Lease, outcome: Outcome, *, now: datetime, claimed: TaskRecord | None = None
    ) -> Awaitable[TaskRecord | None]:
        """Apply a checked ``outcome`` under ``lease``: the updated record, or ``None`` if the fence failed (a retry of
        a record whose cancel was requested ends it cancelled, so ``claimed`` can give only a terminal outcome's
        record). A retry notifies the wakeup channel, whatever it made of the record."""
        ...

    async def announce_finished(self, record_id: str) -> None:
        """Tell finish waiters in other processes that ``record_id`` became terminal by another statement than the
        one that ended it (PostgreSQL NOTIFY on the finish channel; nothing elsewhere)."""
        ...

    async def expired_leases(self, *, now: datetime, limit: int) -> list[TaskRecord]:
        """Up to ``limit`` running records whose lease expired at ``now``."""
        ...

    async def cancel(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Cancel a pending record or flag a running one; the record afterwards."""
        ...

    async def requeue(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Put a failed, cancelled or expired record back to pending (``DuplicateTaskError`` on a held key)."""
        ...

    async def expire(self, *, now: datetime, limit: int) -> int:
        """Expire up to ``limit`` pending records past ``expires_at``; how many."""
        ...

    async def prune(self, *, finished_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` terminal records finished before ``finished_before``; how many."""
        ...

    async def query(self, where: RecordFilter, *, limit: int, cursor: str | None) -> list[TaskRecord]:
        """Up to ``limit`` records matching ``where`` with ids below ``cursor``, newest first."""
        ...

    async def count_by_status(self, queue: str | None, limit: int | None = None) -> dict[str, int]:
        """Records by status value (absent statuses missing), of one queue or all; with ``limit``, a status with more
        records counts ``limit + 1``."""
        ...

    async def oldest_due(self, *, now: datetime, queue: str | None) -> datetime | None:
        """``scheduled_at`` of the oldest due pending record, of one queue or all."""
        ...

    async def earliest_pending(self, queues: Sequence[str], *, now: datetime) -> datetime | None:
        """The earliest ``scheduled_at`` among pending records of ``queues`` (paused ones left out) not expired at
        ``now``."""
        ...

    async def status_of(self, record_id: str) -> str | None:
        """The stored status value of ``record_id``, or ``None``."""
        ...

    async def pause_queue(self, queue: str, *, now: datetime) -> bool:
        """Insert the queue's pause row unless it exists; whether this call inserted it."""
        ...

    async def resume_queue(self, queue: str) -> bool:
        """Delete the queue's pause row (notifying its waiters on PostgreSQL); whether there was one."""
        ...

    async def paused_queues(self) -> dict[str, datetime]:
        """Every pause row: queue to ``paused_at``."""
        ...

    async def upsert_worker(self, worker_id: str, info: str, expires_at: datetime) -> None:
        """Insert or replace a worker row (``info`` is JSON)."""
        ...

    async def purge_workers(self, horizon: datetime) -> None:
        """Delete worker rows that expired before ``horizon``."""
        ...

    async def delete_worker(self, worker_id: str) -> None:
        """Delete a worker row."""
        ...

    async def live_workers(self, now: datetime) -> list[str]:
        """The info (JSON) of workers whose expiry is after ``now``, ordered by id."""
        ...

    async def acquire_lock(self, name: str, *, owner: str, expires_at: datetime, now: datetime) -> bool:
        """Take or renew lock ``name`` unless another owner holds it unexpired at ``now``."""
        ...

    async def release_lock(self, name: str, *, owner: str) -> None:
        """Delete lock ``name`` if ``owner`` holds it."""
        ...


class SQLQueueBackend(QueueBackend):
    """A queue backend whose storage is a :class:`RecordStore`; subclasses set :attr:`store` and their lifecycle.

    With :meth:`listen` (PostgreSQL with notifications) the instance declares ``PUSH_WAKEUP`` and
    ``FINISH_WAKEUP``: the store's statements NOTIFY ``wakeup_channel`` with the queue of new work and
    ``finish_channel`` with the ids of finished records, and one dedicated connection LISTENs from the first
    wait on. Elsewhere it declares neither and the core polls.
    """

    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    """Per instance: PostgreSQL with notifications adds push wakeups (see :meth:`listen`)."""

    store: RecordStore
    """The statements (set by the subclass before the backend is used)."""
    events: EventStore
    """The event history's statements (set by the subclass, which declares ``EVENT_HISTORY``: every SQL backend has
    the events table)."""
    event_scan_window: int = HISTORY_SCAN_WINDOW
    """Most events one page of a history query by type or queue without a task examines (tests make it small)."""

    _listener: NotificationListener | None = None
    _work_waiters: Waiters
    _finish_waiters: Waiters

    def listen(
        self,
        connect: Callable[[], Awaitable[Any]],
        driver: ListenDriver,
        *,
        wakeup_channel: str,
        finish_channel: str,
        close: Callable[[Any], Awaitable[None]] | None = None,
    ) -> None:
        """Declare push wakeups, fed by a LISTEN connection that ``connect`` opens at the first wait (call once)."""
        self._work_waiters = Waiters()
        self._finish_waiters = Waiters()
        self._listener = NotificationListener(
            connect,
            driver,
            {wakeup_channel: self._work_waiters.wake, finish_channel: self._wake_finished},
            on_connected=self._wake_all,
            close=close,
        )
        self.capabilities = self.capabilities | _PUSH  # type: ignore[misc] # per instance: depends on the database

    @property
    def listener(self) -> NotificationListener | None:
        """The LISTEN connection keeper (``None`` without push wakeups); started by the first wait."""
        return self._listener

    async def stop_listening(self) -> None:
        """Stop the listener (if it runs) and wake every waiter: call from ``close``."""
        listener = self._listener
        if listener is not None:
            await listener.stop()
            self._wake_all()

    async def _listening(self, timeout: float) -> float:
        """Start the LISTEN connection on the first wait and give it up to ``timeout`` to subscribe; return
        what is left of ``timeout``.

        A process that only enqueues (a web app next to separate workers) then never holds a LISTEN
        connection nor receives the notifications of its own enqueues. Nothing sent before the subscription
        is missed: the first waiter registers once subscribed and then looks for what it waits for, and a
        waiter that registered earlier is woken by the subscription.
        """
        listener = self._listener
        if listener is None or listener.started:
            return timeout
        listener.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await listener.wait_connected(timeout)
        return max(0.0, timeout - (loop.time() - started))

    def _wake_finished(self, payload: str) -> None:
        """A finish notification carries one id, or several comma-separated ids none of which holds a comma."""
        self._finish_waiters.wake(payload)
        if "," in payload:
            for record_id in payload.split(","):
                self._finish_waiters.wake(record_id)

    def _wake_all(self) -> None:
        self._work_waiters.wake_all()
        self._finish_waiters.wake_all()

    # -- writing work ------------------------------------------------------------------------------

    async def enqueue(self, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        """Insert records with deduplication by id, then by active key; one outcome per input, in order."""
        if not records:
            return []
        return await self.store.enqueue(records)

    async def get(self, record_id: str) -> TaskRecord | None:
        """Return the record with ``record_id``, or ``None``."""
        return await self.store.get(record_id)

    async def get_by_key(self, key: str) -> TaskRecord | None:
        """Return the active holder of ``key``, else the most recently created record with it, else ``None``."""
        return await self.store.get_by_key(key)

    # -- claiming and running ----------------------------------------------------------------------

    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_seconds: float
    ) -> list[TaskRecord]:
        """Atomically claim up to ``limit`` due records from ``queues``, in due order; an undecodable one is failed
        under its fence instead (``isolate_undecodable``)."""
        if limit <= 0 or not queues:
            return []
        claimed = await self.store.claim(
            list(dict.fromkeys(queues)),
            owner=owner,
            limit=limit,
            now=now,
            lease_expires_at=lease_expiry(now, lease_seconds),
        )
        claimed.sort(key=due_order)  # RETURNING gives rows in no particular order
        return await isolate_undecodable(self, claimed, now=now)

    async def claim_record(
        self, record_id: str, *, owner: str, now: datetime, lease_seconds: float
    ) -> TaskRecord | None:
        """Claim one pending record whatever its ``scheduled_at``; ``None`` if missing, not pending or undecodable
        (failed under its fence)."""
        claimed = await self.store.claim_record(
            record_id, owner=owner, now=now, lease_expires_at=lease_expiry(now, lease_seconds)
        )
        return await isolate_undecodable_record(self, claimed, now=now)

    async def transfer(self, lease: Lease, *, owner: str, now: datetime, lease_seconds: float) -> TaskRecord | None:
        """Hand the running attempt under ``lease`` to ``owner``; the record after the change, or ``None`` if the fence
        failed (a subclass declares ``TRANSFER``)."""
        if Capability.TRANSFER not in self.capabilities:
            return await super().transfer(lease, owner=owner, now=now, lease_seconds=lease_seconds)
        return await self.store.transfer(lease, owner=owner, lease_expires_at=lease_expiry(now, lease_seconds))

    async def save_progress(self, updates: Sequence[tuple[Lease, TaskProgress]]) -> None:
        """Store the progress of each attempt whose fence matches, the last of each fence's updates (one guarded
        statement per batch)."""
        encoded = _encoded_progress(updates)
        if encoded:
            await self.store.save_progress(encoded)

    async def renew(self, leases: Sequence[Lease], *, now: datetime, lease_seconds: float) -> dict[str, LeaseState]:
        """Extend each held lease and report ``HELD``, ``CANCEL_REQUESTED`` or ``LOST`` per record id."""
        if not leases:
            return {}
        held = await self.store.renew(list(leases), lease_expires_at=lease_expiry(now, lease_seconds))
        return lease_states(leases, held)

    async def finish(
        self, lease: Lease, outcome: Outcome, *, now: datetime, claimed: TaskRecord | None = None
    ) -> TaskRecord | None:
        """End the running attempt under ``lease``; the updated record, or ``None`` if the fence failed.

        Raises:
            ValueError: ``outcome.status`` is ``running`` or ``expired``, or ``pending`` without ``scheduled_at``.
        """
        check_outcome(outcome)
        finished = await self.store.finish(lease, outcome, now=now, claimed=claimed)
        if (
            finished is not None
            and finished.status is TaskStatus.CANCELLED
            and as_status(outcome.status) is TaskStatus.PENDING
        ):
            await self.store.announce_finished(finished.id)  # a cancel request won over the retry
        return finished

    async def expired_leases(self, *, now: datetime, limit: int) -> list[TaskRecord]:
        """Return up to ``limit`` running records whose lease expired at ``now``, earliest expiry first."""
        if limit <= 0:
            return []
        return await self.store.expired_leases(now=now, limit=limit)

    # -- control -----------------------------------------------------------------------------------

    async def cancel(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Cancel a pending record, flag a running one, leave a terminal one alone; the record afterwards."""
        return await self.store.cancel(record_id, now=now)

    async def requeue(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Put a failed, cancelled or expired record back to pending (manual retry).

        Raises:
            DuplicateTaskError: Another active record holds the record's key.
        """
        return await self.store.requeue(record_id, now=now)

    async def expire(self, *, now: datetime, limit: int) -> int:
        """Mark up to ``limit`` pending records with ``expires_at <= now`` as expired; return how many."""
        if limit <= 0:
            return 0
        return await self.store.expire(now=now, limit=limit)

    async def prune(self, *, finished_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` terminal records finished before ``finished_before``; return how many."""
        if limit <= 0:
            return 0
        return await self.store.prune(finished_before=finished_before, limit=limit)

    # -- event history -----------------------------------------------------------------------------

    async def append_events(self, events: Sequence[QueueEvent]) -> None:
        """Insert the events whose ids are new (inserts that skip stored ids)."""
        if events:
            await self.events.append(events)

    @property
    def stores_progress_with_events(self) -> bool:
        """Whether the event store writes events and progress in one statement (PostgreSQL through SQLSpec)."""
        return self.events.combines_progress

    async def append_events_with_progress(
        self, events: Sequence[QueueEvent], progress: Sequence[tuple[Lease, TaskProgress]]
    ) -> None:
        """Insert the new events and store the progress: one statement where the event store can
        (``combines_progress``: PostgreSQL), else the two writes one after the other."""
        if events and progress and self.events.combines_progress:
            await self.events.append_with_progress(events, _encoded_progress(progress))
            return
        await super().append_events_with_progress(events, progress)

    async def query_events(
        self, where: EventFilter, *, limit: int, cursor: str | None = None, newest_first: bool = False
    ) -> EventPage:
        """Return one page of stored events in ``(occurred_at, seq, id)`` order (see
        :func:`~litestar_queues.sql.events.query_event_page`: a page by type or queue without a task examines at most
        ``event_scan_window`` events, so it may be short while ``next_cursor`` goes on)."""
        if limit <= 0:
            return EventPage([], None)
        return await query_event_page(
            self.events, where, limit=limit, cursor=cursor, newest_first=newest_first, window=self.event_scan_window
        )

    async def prune_events(self, *, occurred_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` events that occurred before ``occurred_before``, oldest first."""
        if limit <= 0:
            return 0
        return await self.events.prune(occurred_before=occurred_before, limit=limit)

    # -- reading -----------------------------------------------------------------------------------

    async def query(self, where: RecordFilter, *, limit: int, cursor: str | None = None) -> RecordPage:
        """Return records matching ``where``, newest first (``id`` descending), ``limit`` per page."""
        if limit <= 0:
            return RecordPage([], None)
        return record_page(await self.store.query(where, limit=limit + 1, cursor=cursor), limit)

    async def statistics(
        self, *, now: datetime, queue: str | None = None, count_limit: int | None = None
    ) -> QueueStatistics:
        """Count records by status (every status present) and find the oldest due pending record.

        Without ``count_limit`` the counts scan the table; with it, each status reads at most ``count_limit + 1``
        index entries (see ``docs/sql.md``).
        """
        counts = await self.store.count_by_status(queue, count_limit)
        oldest = await self.store.oldest_due(now=now, queue=queue) if counts.get(TaskStatus.PENDING.value) else None
        return queue_statistics(counts, oldest_pending_at=oldest, queue=queue)

    # -- pausing queues ----------------------------------------------------------------------------

    async def pause_queue(self, queue: str, *, now: datetime) -> bool:
        """Pause ``queue`` (a row of the pauses table, which claims check); whether this call paused it."""
        return await self.store.pause_queue(queue, now=now)

    async def resume_queue(self, queue: str) -> bool:
        """Resume ``queue`` (NOTIFYing its waiters on PostgreSQL); whether it was paused."""
        return await self.store.resume_queue(queue)

    async def paused_queues(self) -> dict[str, datetime]:
        """The paused queues and when each was paused."""
        return await self.store.paused_queues()

    # -- workers and maintenance -------------------------------------------------------------------

    async def register_worker(self, info: WorkerInfo, *, ttl_seconds: float) -> None:
        """Insert or replace ``info``, live until ``last_heartbeat_at + ttl_seconds``."""
        await self.store.upsert_worker(
            info.id, encode_worker(info), info.last_heartbeat_at + timedelta(seconds=ttl_seconds)
        )
        await self.store.purge_workers(info.last_heartbeat_at - _WORKER_ROW_GRACE)

    async def remove_worker(self, worker_id: str) -> None:
        """Forget ``worker_id``."""
        await self.store.delete_worker(worker_id)

    async def list_workers(self, *, now: datetime) -> list[WorkerInfo]:
        """Return the workers live at ``now`` (``last_heartbeat_at + ttl > now``), ordered by id."""
        return [decode_worker(info) for info in await self.store.live_workers(now)]

    async def acquire_lock(self, name: str, *, owner: str, ttl_seconds: float, now: datetime) -> bool:
        """Take or renew lock ``name`` for ``ttl_seconds`` unless another owner holds it unexpired at ``now``."""
        return await self.store.acquire_lock(
            name, owner=owner, expires_at=now + timedelta(seconds=ttl_seconds), now=now
        )

    async def release_lock(self, name: str, *, owner: str) -> None:
        """Release lock ``name`` if ``owner`` holds it."""
        await self.store.release_lock(name, owner=owner)

    # -- push (PostgreSQL) -------------------------------------------------------------------------

    async def wait_for_work(self, queues: Sequence[str], *, timeout: float) -> None:
        """Return on a NOTIFY for one of ``queues``, when the earliest delayed record falls due, or after ``timeout``.

        Raises:
            UnsupportedOperation: No push wakeups (not PostgreSQL with notifications).
        """
        if Capability.PUSH_WAKEUP not in self.capabilities:
            raise UnsupportedOperation(f"{type(self).__name__} has no push wakeups on this database")
        names = list(dict.fromkeys(queues))
        timeout = await self._listening(timeout)
        future = self._work_waiters.register(names)
        if names:
            wall_now = utc_now()
            earliest = await self.store.earliest_pending(names, now=wall_now)
            if earliest is not None:
                timeout = min(timeout, (earliest - wall_now).total_seconds())
        await self._work_waiters.wait(future, names, timeout)

    async def wait_for_finish(self, record_id: str, *, timeout: float) -> None:
        """Return on a NOTIFY that ``record_id`` became terminal, or after ``timeout``; at once if it is already.

        Raises:
            UnsupportedOperation: No push wakeups (not PostgreSQL with notifications).
        """
        if Capability.FINISH_WAKEUP not in self.capabilities:
            raise UnsupportedOperation(f"{type(self).__name__} has no finish wakeups on this database")
        timeout = await self._listening(timeout)
        future = self._finish_waiters.register((record_id,))
        status = await self.store.status_of(record_id)
        if status is None or status in _TERMINAL_VALUES:
            timeout = 0.0
        await self._finish_waiters.wait(future, (record_id,), timeout)

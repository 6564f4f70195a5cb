"""The SQL queue backend: the storage contract on PostgreSQL, SQLite and MySQL/MariaDB through SQLSpec."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import ClassVar

from litestar_queues.backend import Capability, QueueBackend
from litestar_queues.backends.sqlspec.codec import decode_worker, encode_json, encode_worker
from litestar_queues.backends.sqlspec.config import SQLSpecBackendConfig, describe_database
from litestar_queues.backends.sqlspec.database import Database, detect_driver, family_of
from litestar_queues.backends.sqlspec.dialects import Dialect, create_dialect
from litestar_queues.backends.sqlspec.dialects.sqlite import check_sqlite_location
from litestar_queues.backends.sqlspec.enqueue import enqueue_records
from litestar_queues.backends.sqlspec.history import EventStore
from litestar_queues.backends.sqlspec.listener import NotificationListener
from litestar_queues.backends.sqlspec.migrate import SchemaMigrator, migration_extension_config
from litestar_queues.backends.sqlspec.names import TableNames
from litestar_queues.clock import utc_now
from litestar_queues.errors import BackendUnavailableError, ConfigurationError, UnsupportedOperation
from litestar_queues.events.envelope import QueueEvent
from litestar_queues.events.history import EventFilter, EventPage
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
)
from litestar_queues.salvage import isolate_undecodable, isolate_undecodable_record
from litestar_queues.waiters import Waiters

__all__ = ("SQLSpecBackend",)

logger = logging.getLogger("litestar_queues.backends.sqlspec")

_EVERYWHERE = frozenset({Capability.TRANSFER, Capability.EVENT_HISTORY})
_PUSH = _EVERYWHERE | {Capability.PUSH_WAKEUP, Capability.FINISH_WAKEUP}
_FINISH_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.PENDING})
_TERMINAL_VALUES = frozenset(status.value for status in TERMINAL_STATUSES)
_WORKER_ROW_GRACE = timedelta(hours=1)
_KEPT_CONNECTIONS = 4
"""Most pooled connections kept between operations (PostgreSQL, own pool): a worker's claim, two finishes and a
heartbeat each find one."""
"""Worker rows are deleted this long after they expired (the registry stays small without a sweeper)."""


class SQLSpecBackend(QueueBackend):
    """Stores records in SQL tables through a SQLSpec adapter configuration.

    Every transition of a running record is one guarded statement (PostgreSQL, SQLite) or one short
    transaction (MySQL/MariaDB), so the fence decides atomically in the database. Claims lock with
    ``FOR UPDATE SKIP LOCKED`` where the database has it and rely on SQLite's write lock otherwise.

    On PostgreSQL with ``listen_notify`` (the default) the instance declares ``PUSH_WAKEUP`` and
    ``FINISH_WAKEUP``: enqueues, retries and requeues NOTIFY the queue name, terminal transitions
    NOTIFY the record id, and one dedicated connection LISTENs from the first wait on. Elsewhere it
    declares neither and the core polls; so does a backend behind a transaction-mode pooler without
    ``direct_dsn`` (it still sends NOTIFY).
    """

    capabilities: ClassVar[frozenset[Capability]] = _EVERYWHERE
    """Per instance: PostgreSQL with ``listen_notify`` adds push wakeups (set in ``__init__``)."""
    name: ClassVar[str] = "sqlspec"

    def __init__(self, config: SQLSpecBackendConfig) -> None:
        """Create an unopened backend for ``config``."""
        self.config = config
        sqlspec_config, self._owns_config = config.create_sqlspec_config()
        driver = detect_driver(sqlspec_config)
        family = family_of(driver)
        self.names = TableNames(config.table_prefix, family)
        self._db = Database(sqlspec_config, driver)
        notify = family == "postgres" and config.listen_notify
        self._listen_config = config.create_listen_config(sqlspec_config, driver) if notify else None
        self._listen = self._listen_config is not None
        self._dialect: Dialect = create_dialect(self._db, self.names, notify=notify)
        self._migrator = SchemaMigrator(self._db, self._dialect, self.names, config.version_table)
        self._events = EventStore(self._db, self.names, self._dialect.codec)
        self._work_waiters = Waiters()
        self._finish_waiters = Waiters()
        self._listener: NotificationListener | None = None
        self.split_claims = family == "postgres"  # a claim there is a transaction: the next one overlaps a batch
        self.local_only = family == "sqlite"  # a file other machines cannot reach
        if self._listen:
            self.capabilities = _PUSH  # type: ignore[misc] # per instance: depends on the database family

    @property
    def sqlspec_config(self) -> object:
        """The SQLSpec adapter configuration in use (the application's, or the one built from ``dsn``)."""
        return self._db.config

    @property
    def listener(self) -> NotificationListener | None:
        """The LISTEN connection keeper while open on PostgreSQL (``None`` elsewhere); started by the first wait."""
        return self._listener

    # -- lifecycle ---------------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, check the server and bring the schema up to date (or check it is); listening starts with the
        first wait.

        Raises:
            BackendUnavailableError: no answer within ``connect_timeout`` seconds, or the connection failed (refused,
                unknown host, authentication...); the message names the backend, the driver and the database (the
                password redacted) and the driver's reason.
            ConfigurationError: the server cannot run the backend, or the schema is behind and may not be migrated.
        """
        await self._connect()
        await self._dialect.check_server()
        if self.config.apply_migrations:
            applied = await self._migrator.upgrade()
            if applied:
                logger.info("applied queue schema migrations %s", ", ".join(applied))
        else:
            pending = await self._migrator.pending()
            if pending:
                extension, _ = migration_extension_config(self.names.prefix)
                msg = (
                    f"the queue tables are missing migrations {pending}: run `sqlspec upgrade` with the "
                    f"{extension!r} extension (see migration_extension_config), or set apply_migrations=True"
                )
                raise ConfigurationError(msg)
        pool_size = int(self._db.config.connection_config.get("max_size") or 2)
        if self._owns_config and pool_size > 1:  # never of the application's own pool, nor of a pool of one
            self._db.keep_connections(min(_KEPT_CONNECTIONS, pool_size - 1))
        if self._listen:
            self._listener = NotificationListener(
                self._listen_config,
                self._db.driver,
                {
                    self.names.wakeup_channel: self._work_waiters.wake,
                    self.names.finish_channel: self._wake_finished,
                },
                on_connected=self._wake_all,
            )
        elif self.names.family == "postgres" and self.config.listen_notify:
            logger.info(
                "%s is behind a transaction-mode pooler and has no direct_dsn to LISTEN on: workers poll for work",
                self.where,
            )

    async def _connect(self) -> None:
        """Open and close one connection outside the pool, within ``connect_timeout``: where an unreachable server
        shows, with the driver's own reason (a pool would retry in the background and only time out)."""
        if self.names.family == "sqlite":
            check_sqlite_location(self._db.config, self.where)
        timeout = self.config.connect_timeout
        try:
            connection = await asyncio.wait_for(self._db.config.create_connection(), timeout)
            closing = connection.close()
            if inspect.isawaitable(closing):
                await closing
        except Exception as exc:
            timed_out = isinstance(exc, asyncio.TimeoutError)
            reason = f"no answer within {timeout:g}s" if timed_out else " ".join(f"{type(exc).__name__}: {exc}".split())
            raise BackendUnavailableError(f"{self.where} cannot be reached: {reason}") from exc

    @property
    def where(self) -> str:
        """The backend, driver and database, for messages: ``sqlspec backend (asyncpg) at postgresql://u:***@h/db``."""
        return f"{self.name} backend ({self._db.driver}) at {describe_database(self.config, self._db.config)}"

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

    async def close(self) -> None:
        """Stop listening, wake every waiter, and close the pool if the backend created it."""
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.stop()
        self._wake_all()
        await self._db.release_kept()
        if self._owns_config:
            await self._db.config.close_pool()

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
        return await enqueue_records(self._dialect, records)

    async def get(self, record_id: str) -> TaskRecord | None:
        """Return the record with ``record_id``, or ``None``."""
        return await self._dialect.get(record_id)

    async def get_by_key(self, key: str) -> TaskRecord | None:
        """Return the active holder of ``key``, else the most recently created record with it, else ``None``."""
        return await self._dialect.get_by_key(key)

    # -- claiming and running ----------------------------------------------------------------------

    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_seconds: float
    ) -> list[TaskRecord]:
        """Atomically claim up to ``limit`` due records from ``queues``, in due order."""
        if limit <= 0 or not queues:
            return []
        claimed = await self._dialect.claim(
            list(dict.fromkeys(queues)),
            owner=owner,
            limit=limit,
            now=now,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
        )
        claimed.sort(key=_due_order)
        return await isolate_undecodable(self, claimed, now=now)

    async def claim_record(
        self, record_id: str, *, owner: str, now: datetime, lease_seconds: float
    ) -> TaskRecord | None:
        """Claim one pending record whatever its ``scheduled_at``; ``None`` if missing or not pending."""
        claimed = await self._dialect.claim_record(
            record_id, owner=owner, now=now, lease_expires_at=now + timedelta(seconds=lease_seconds)
        )
        return await isolate_undecodable_record(self, claimed, now=now)

    async def save_progress(self, updates: Sequence[tuple[Lease, TaskProgress]]) -> None:
        """Store the progress of each attempt whose fence matches, in order (one guarded UPDATE)."""
        latest = {(lease.record_id, lease.owner, lease.token): (lease, progress) for lease, progress in updates}
        if latest:
            await self._dialect.save_progress([(lease, encode_json(progress)) for lease, progress in latest.values()])

    async def transfer(self, lease: Lease, *, owner: str, now: datetime, lease_seconds: float) -> TaskRecord | None:
        """Hand the attempt held by ``lease`` to ``owner`` with a new token and lease; ``None`` if the fence fails."""
        return await self._dialect.transfer(lease, owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds))

    async def renew(self, leases: Sequence[Lease], *, now: datetime, lease_seconds: float) -> dict[str, LeaseState]:
        """Extend each held lease and report ``HELD``, ``CANCEL_REQUESTED`` or ``LOST`` per record id."""
        if not leases:
            return {}
        held = await self._dialect.renew(list(leases), lease_expires_at=now + timedelta(seconds=lease_seconds))
        states: dict[str, LeaseState] = {}
        for lease in leases:
            cancel_requested = held.get(lease.record_id)
            if cancel_requested is None:
                states[lease.record_id] = LeaseState.LOST
            else:
                states[lease.record_id] = LeaseState.CANCEL_REQUESTED if cancel_requested else LeaseState.HELD
        return states

    async def finish(
        self, lease: Lease, outcome: Outcome, *, now: datetime, claimed: TaskRecord | None = None
    ) -> TaskRecord | None:
        """End the running attempt under ``lease``; the updated record, or ``None`` if the fence failed.

        On PostgreSQL a terminal outcome with ``claimed`` is not read back (see the contract).

        Raises:
            ValueError: ``outcome.status`` is ``running`` or ``expired``, or ``pending`` without ``scheduled_at``.
        """
        status = as_status(outcome.status)
        if status not in _FINISH_STATUSES:
            msg = f"finish cannot end an attempt as {status.value!r}"
            raise ValueError(msg)
        if status is TaskStatus.PENDING and outcome.scheduled_at is None:
            msg = "finish with status 'pending' needs outcome.scheduled_at"
            raise ValueError(msg)
        return await self._dialect.finish(lease, outcome, now=now, claimed=claimed)

    async def expired_leases(self, *, now: datetime, limit: int) -> list[TaskRecord]:
        """Return up to ``limit`` running records whose lease expired at ``now``, earliest expiry first."""
        if limit <= 0:
            return []
        return await self._dialect.expired_leases(now=now, limit=limit)

    # -- control -----------------------------------------------------------------------------------

    async def cancel(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Cancel a pending record, flag a running one, leave a terminal one alone; the record afterwards."""
        return await self._dialect.cancel(record_id, now=now)

    async def requeue(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Put a failed, cancelled or expired record back to pending (manual retry).

        Raises:
            DuplicateTaskError: Another active record holds the record's key.
        """
        return await self._dialect.requeue(record_id, now=now)

    async def expire(self, *, now: datetime, limit: int) -> int:
        """Mark up to ``limit`` pending records with ``expires_at <= now`` as expired; return how many."""
        if limit <= 0:
            return 0
        return await self._dialect.expire(now=now, limit=limit)

    async def prune(self, *, finished_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` terminal records finished before ``finished_before``; return how many."""
        if limit <= 0:
            return 0
        return await self._dialect.prune(finished_before=finished_before, limit=limit)

    # -- event history -----------------------------------------------------------------------------

    async def append_events(self, events: Sequence[QueueEvent]) -> None:
        """Insert the events whose ids are new (multi-row inserts that skip stored ids)."""
        if events:
            await self._events.append(events)

    async def query_events(
        self, where: EventFilter, *, limit: int, cursor: str | None = None, newest_first: bool = False
    ) -> EventPage:
        """Return one page of stored events in ``(occurred_at, seq, id)`` order: one range of an index."""
        if limit <= 0:
            return EventPage([], None)
        return await self._events.query(where, limit=limit, cursor=cursor, newest_first=newest_first)

    async def prune_events(self, *, occurred_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` events that occurred before ``occurred_before``, oldest first."""
        if limit <= 0:
            return 0
        return await self._events.prune(occurred_before=occurred_before, limit=limit)

    # -- reading -----------------------------------------------------------------------------------

    async def query(self, where: RecordFilter, *, limit: int, cursor: str | None = None) -> RecordPage:
        """Return records matching ``where``, newest first (``id`` descending), ``limit`` per page."""
        if limit <= 0:
            return RecordPage([], None)
        records = await self._dialect.query(where, limit=limit + 1, cursor=cursor)
        if len(records) > limit:
            del records[limit:]
            return RecordPage(records, records[-1].id)
        return RecordPage(records, None)

    async def statistics(
        self, *, now: datetime, queue: str | None = None, count_limit: int | None = None
    ) -> QueueStatistics:
        """Count records by status (every status present) and find the oldest due pending record.

        Without ``count_limit`` the counts scan the table; with it, each status reads at most ``count_limit + 1``
        index entries (see ``docs/sql.md``).
        """
        stored = await self._dialect.count_by_status(queue, count_limit)
        counts = {status: stored.get(status.value, 0) for status in TaskStatus}
        oldest = await self._dialect.oldest_due(now=now, queue=queue) if counts[TaskStatus.PENDING] else None
        return QueueStatistics(counts=counts, oldest_pending_at=oldest, queue=queue)

    # -- pausing queues ----------------------------------------------------------------------------

    async def pause_queue(self, queue: str, *, now: datetime) -> bool:
        """Pause ``queue`` (a row of the pauses table, which claims check); whether this call paused it."""
        return await self._dialect.pause_queue(queue, now=now)

    async def resume_queue(self, queue: str) -> bool:
        """Resume ``queue`` (NOTIFYing its waiters on PostgreSQL); whether it was paused."""
        return await self._dialect.resume_queue(queue)

    async def paused_queues(self) -> dict[str, datetime]:
        """The paused queues and when each was paused."""
        return await self._dialect.paused_queues()

    # -- workers and maintenance -------------------------------------------------------------------

    async def register_worker(self, info: WorkerInfo, *, ttl_seconds: float) -> None:
        """Insert or replace ``info``, live until ``last_heartbeat_at + ttl_seconds``."""
        await self._dialect.upsert_worker(
            info.id, encode_worker(info), info.last_heartbeat_at + timedelta(seconds=ttl_seconds)
        )
        await self._dialect.purge_workers(info.last_heartbeat_at - _WORKER_ROW_GRACE)

    async def remove_worker(self, worker_id: str) -> None:
        """Forget ``worker_id``."""
        await self._dialect.delete_worker(worker_id)

    async def list_workers(self, *, now: datetime) -> list[WorkerInfo]:
        """Return the workers live at ``now`` (``last_heartbeat_at + ttl > now``), ordered by id."""
        return [decode_worker(info) for info in await self._dialect.live_workers(now)]

    async def acquire_lock(self, name: str, *, owner: str, ttl_seconds: float, now: datetime) -> bool:
        """Take or renew lock ``name`` for ``ttl_seconds`` unless another owner holds it unexpired at ``now``."""
        return await self._dialect.acquire_lock(
            name, owner=owner, expires_at=now + timedelta(seconds=ttl_seconds), now=now
        )

    async def release_lock(self, name: str, *, owner: str) -> None:
        """Release lock ``name`` if ``owner`` holds it."""
        await self._dialect.release_lock(name, owner=owner)

    # -- push (PostgreSQL) -------------------------------------------------------------------------

    async def wait_for_work(self, queues: Sequence[str], *, timeout: float) -> None:
        """Return on a NOTIFY for one of ``queues``, when the earliest delayed record falls due, or after ``timeout``.

        Raises:
            UnsupportedOperation: Not PostgreSQL with ``listen_notify``.
        """
        if Capability.PUSH_WAKEUP not in self.capabilities:
            raise UnsupportedOperation(f"{type(self).__name__} on {self.names.family} has no push wakeups")
        names = list(dict.fromkeys(queues))
        timeout = await self._listening(timeout)
        future = self._work_waiters.register(names)
        if names:
            wall_now = utc_now()
            earliest = await self._dialect.earliest_pending(names, now=wall_now)
            if earliest is not None:
                timeout = min(timeout, (earliest - wall_now).total_seconds())
        await self._work_waiters.wait(future, names, timeout)

    async def wait_for_finish(self, record_id: str, *, timeout: float) -> None:
        """Return on a NOTIFY that ``record_id`` became terminal, or after ``timeout``; at once if it is already.

        Raises:
            UnsupportedOperation: Not PostgreSQL with ``listen_notify``.
        """
        if Capability.FINISH_WAKEUP not in self.capabilities:
            raise UnsupportedOperation(f"{type(self).__name__} on {self.names.family} has no finish wakeups")
        timeout = await self._listening(timeout)
        future = self._finish_waiters.register((record_id,))
        status = await self._dialect.status_of(record_id)
        if status is None or status in _TERMINAL_VALUES:
            timeout = 0.0
        await self._finish_waiters.wait(future, (record_id,), timeout)


def _due_order(record: TaskRecord) -> tuple[int, datetime, str]:
    return (-record.priority, record.scheduled_at, record.id)

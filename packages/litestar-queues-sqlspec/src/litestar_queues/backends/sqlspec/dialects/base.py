"""The interface every SQL family implements, with the statements PostgreSQL and SQLite share.

Both of those have ``UPDATE … RETURNING``, so every transition is one guarded statement whose
returned rows decide the outcome. MySQL/MariaDB has no ``UPDATE … RETURNING`` and overrides those
operations (:mod:`litestar_queues.backends.sqlspec.dialects.mysql`).

Statements use ``:name`` parameters; SQLSpec rewrites them into each driver's native style once per
statement text and caches the result, so the text of every statement is fixed per backend instance
(and per list length where a list is expanded).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from sqlspec.exceptions import DeadlockError, UniqueViolationError

from litestar_queues.backends.sqlspec.database import Database
from litestar_queues.backends.sqlspec.names import Family, TableNames
from litestar_queues.records import EnqueueOutcome, Lease, Outcome, RecordFilter, TaskRecord, TaskStatus, as_status
from litestar_queues.semantics import requeue_refused
from litestar_queues.sql.enqueue import enqueue_records
from litestar_queues.sql.failures import retrying
from litestar_queues.sql.finishing import finish_params, finish_values
from litestar_queues.sql.rows import TASK_COLUMNS, ValueCodec, decode_task

__all__ = ("SELECT_COLUMNS", "Dialect", "chunked")

_T = TypeVar("_T")

SELECT_COLUMNS = ", ".join(column for column in TASK_COLUMNS if column != "active_key")
TERMINAL_SQL = "('completed', 'failed', 'cancelled', 'expired')"
REQUEUEABLE_SQL = "('failed', 'cancelled', 'expired')"
_INSERT_BYTES_PER_CHUNK = 4 * 1024 * 1024
"""Rough bound on one bulk insert's payload, well under MySQL's default ``max_allowed_packet``."""


def chunked(rows: Sequence[tuple[Any, ...]], max_rows: int) -> Iterable[Sequence[tuple[Any, ...]]]:
    """Split rows into chunks of at most ``max_rows`` rows and about 4 MiB of text each."""
    start = 0
    size = 0
    for position, row in enumerate(rows):
        row_size = sum(len(value) for value in row if isinstance(value, str))
        if position > start and (position - start >= max_rows or size + row_size > _INSERT_BYTES_PER_CHUNK):
            yield rows[start:position]
            start = position
            size = 0
        size += row_size
    if start < len(rows):
        yield rows[start:]


class Dialect(ABC):
    """Storage primitives of the tasks, workers and locks tables for one SQL family.

    Methods take and return :class:`TaskRecord` values; each runs its statements in sessions of
    :class:`Database` and leaves no transaction open.
    """

    family: ClassVar[Family]
    """The SQL family this dialect speaks."""
    migrates_inside_guard: ClassVar[bool] = True
    """Whether SQLSpec's version table is created inside :meth:`migration_guard` (its DDL commits)."""

    def __init__(self, db: Database, names: TableNames, codec: ValueCodec) -> None:
        """Build the fixed statements for the tables named by ``names``."""
        self.db = db
        self.names = names
        self.codec = codec
        tasks = names.tasks
        self.sql_get = f"SELECT {SELECT_COLUMNS} FROM {tasks} WHERE id = :id"
        self.sql_get_by_key = (
            f"SELECT {SELECT_COLUMNS} FROM {tasks} WHERE dedup_key = :key "
            "ORDER BY CASE WHEN active_key IS NULL THEN 1 ELSE 0 END, created_at DESC, id DESC LIMIT 1"
        )
        self.sql_expired_leases = (
            f"SELECT {SELECT_COLUMNS} FROM {tasks} WHERE status = 'running' AND lease_expires_at <= :now "
            "ORDER BY lease_expires_at, id LIMIT :limit"
        )
        self.sql_status = f"SELECT status FROM {tasks} WHERE id = :id"
        self.sql_count_all = f"SELECT status, COUNT(*) AS n FROM {tasks} GROUP BY status"
        self.sql_count_queue = f"SELECT status, COUNT(*) AS n FROM {tasks} WHERE queue = :queue GROUP BY status"
        due = "status = 'pending' AND scheduled_at <= :now AND (expires_at IS NULL OR expires_at > :now)"
        self.sql_oldest_all = f"SELECT MIN(scheduled_at) AS oldest FROM {tasks} WHERE {due}"
        self.sql_oldest_queue = f"SELECT MIN(scheduled_at) AS oldest FROM {tasks} WHERE {due} AND queue = :queue"
        self.sql_cancel_pending = (
            f"UPDATE {tasks} SET status = 'cancelled', finished_at = :now, active_key = NULL "
            f"WHERE id = :id AND status = 'pending'"
        )
        self.sql_cancel_running = f"UPDATE {tasks} SET cancel_requested = TRUE WHERE id = :id AND status = 'running'"
        self.sql_requeue = (
            f"UPDATE {tasks} SET status = 'pending', scheduled_at = :now, attempts = 0, finished_at = NULL, "
            f"result = NULL, error = NULL, progress = NULL, expires_at = NULL, cancel_requested = FALSE, "
            "active_key = dedup_key "
            f"WHERE id = :id AND status IN {REQUEUEABLE_SQL}"
        )
        pauses = names.pauses
        self.unpaused = f"queue NOT IN (SELECT queue FROM {pauses})"
        """The condition a claim adds: the record's queue is not paused (a plain read, never a lock)."""
        self.sql_pause = f"INSERT INTO {pauses} (queue, paused_at) VALUES (:queue, :now) ON CONFLICT (queue) DO NOTHING"
        self.sql_resume = f"DELETE FROM {pauses} WHERE queue = :queue"
        self.sql_paused = f"SELECT queue, paused_at FROM {pauses}"
        # Each status counted in its own subquery with the status as a literal, so each reads the index that covers
        # it (claim, lease, ended) and stops after :cap rows.
        self.sql_count_capped = {
            by_queue: "SELECT "
            + ", ".join(
                f"(SELECT COUNT(*) FROM (SELECT 1 AS one FROM {tasks} WHERE status = '{status.value}'"
                f"{' AND queue = :queue' if by_queue else ''} LIMIT :cap) AS c_{status.value}) AS n_{status.value}"
                for status in TaskStatus
            )
            for by_queue in (False, True)
        }
        workers = names.workers
        self.sql_worker_delete = f"DELETE FROM {workers} WHERE id = :id"
        self.sql_worker_purge = f"DELETE FROM {workers} WHERE expires_at < :horizon"
        self.sql_workers_live = f"SELECT info FROM {workers} WHERE expires_at > :now ORDER BY id"
        self.sql_lock_release = f"DELETE FROM {names.locks} WHERE name = :name AND owner = :owner"
        self._finish_sql: dict[tuple[bool, bool, bool], str] = {}

    # -- lifecycle ---------------------------------------------------------------------------------

    @abstractmethod
    async def check_server(self) -> None:
        """Raise ``ConfigurationError`` if the server cannot run this dialect's statements."""

    @abstractmethod
    def migration_guard(self, session: Any) -> Any:
        """Return an async context manager serialising migrations across processes on ``session``.

        It yields whether the SQLSpec runner should wrap each migration in its own transaction
        (``None``: the adapter's default) or run inside the transaction the guard opened (``False``).
        """

    def startup_lock(self) -> AbstractAsyncContextManager[None]:
        """Serialise whole schema upgrades across processes where the database cannot (SQLite files); else nothing."""
        return nullcontext()

    async def relock(self, session: Any) -> None:
        """Take the migration guard's lock again after a commit ended its transaction (SQLite, PostgreSQL)."""
        del session

    # -- helpers -----------------------------------------------------------------------------------

    async def retrying(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``operation`` (one statement or transaction) again when the database chose it as a deadlock victim:
        it was rolled back, so nothing of it applied."""
        return await retrying(operation, _is_deadlock)

    def decode(self, row: dict[str, Any]) -> TaskRecord:
        """Return the record of a task row."""
        return decode_task(row, self.codec)

    def in_list(self, column: str, name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
        """Return ``column IN (…)`` over ``values`` with its parameters (PostgreSQL binds one array instead)."""
        names = [f"{name}{position}" for position in range(len(values))]
        placeholders = ", ".join(f":{item}" for item in names)
        return f"{column} IN ({placeholders})", dict(zip(names, values, strict=True))

    def notifying(self, sql: str, channel: str, column: str) -> tuple[str, dict[str, Any]]:
        """Wrap an ``UPDATE … RETURNING`` so each returned row notifies ``channel`` (PostgreSQL only)."""
        del channel, column
        return sql, {}

    async def update_returning(
        self, sql: str, params: dict[str, Any], *, notify: tuple[str, str] | None = None
    ) -> list[TaskRecord]:
        """Run ``sql`` (an UPDATE without RETURNING) returning the changed rows, notifying if asked."""
        statement = f"{sql} RETURNING {SELECT_COLUMNS}"
        if notify is not None:
            statement, extra = self.notifying(statement, *notify)
            params = {**params, **extra}
        rows = await self.db.select(statement, params)
        return [self.decode(row) for row in rows]

    # -- writing work ------------------------------------------------------------------------------

    async def enqueue(self, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        """Insert ``records`` deduplicating by id, then by active key; one outcome per input, in input order."""
        return await enqueue_records(self, records)

    async def enqueue_within(self, session: Any, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        """:meth:`enqueue` inside the open transaction of ``session`` (the caller's SQLSpec driver); never ends it."""
        return await enqueue_records(_OnSession(self, session), records)

    async def select_on(self, session: Any, sql: str, params: dict[str, Any]) -> list[Any]:
        """Run a statement returning rows in its own session (again if a deadlock aborted it), or in ``session`` (the
        caller's, whose transaction a deadlock aborts: the error is theirs) when given."""
        if session is None:
            return await self.retrying(lambda: self.db.select(sql, params))
        return list(await session.select(sql, params))

    @abstractmethod
    async def insert_tasks(self, records: Sequence[TaskRecord], *, session: Any = None) -> set[str]:
        """Insert records, skipping any that conflict on id or active key; return the inserted ids.

        In ``session``, the caller's, when given (inside its transaction, never ended here).
        """

    async def select_where_in(self, column: str, values: Sequence[str], *, session: Any = None) -> list[dict[str, Any]]:
        """Return the task rows whose ``column`` is one of ``values`` (a list as long as a bulk enqueue)."""
        condition, params = self.in_list(column, "v", values)
        sql = f"SELECT {SELECT_COLUMNS} FROM {self.names.tasks} WHERE {condition}"
        return await self.select_on(session, sql, params)

    async def fetch_by_ids(self, ids: Sequence[str], *, session: Any = None) -> list[TaskRecord]:
        """Return the stored records with these ids."""
        return [self.decode(row) for row in await self.select_where_in("id", ids, session=session)]

    async def fetch_active_by_keys(self, keys: Sequence[str], *, session: Any = None) -> list[TaskRecord]:
        """Return the active records holding these keys."""
        return [self.decode(row) for row in await self.select_where_in("active_key", keys, session=session)]

    async def get(self, record_id: str) -> TaskRecord | None:
        """Return the record with ``record_id``, or ``None``."""
        rows = await self.db.select(self.sql_get, {"id": record_id})
        return self.decode(rows[0]) if rows else None

    async def get_by_key(self, key: str) -> TaskRecord | None:
        """Return the active holder of ``key``, else the most recently created record with it."""
        rows = await self.db.select(self.sql_get_by_key, {"key": key})
        return self.decode(rows[0]) if rows else None

    # -- claiming and running ----------------------------------------------------------------------

    def claim_set(self) -> str:
        """The SET list of a claim (owner, token, attempts, start and lease)."""
        return (
            "SET status = 'running', owner = :owner, token = token + 1, attempts = attempts + 1, "
            "started_at = :now, lease_expires_at = :lease_expires_at"
        )

    @abstractmethod
    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_expires_at: datetime
    ) -> list[TaskRecord]:
        """Claim up to ``limit`` due records of ``queues`` and return them (in any order)."""

    async def claim_record(
        self, record_id: str, *, owner: str, now: datetime, lease_expires_at: datetime
    ) -> TaskRecord | None:
        """Claim the pending record ``record_id`` whatever its ``scheduled_at``."""
        sql = f"UPDATE {self.names.tasks} {self.claim_set()} WHERE id = :id AND status = 'pending'"
        params = {
            "id": record_id,
            "owner": owner,
            "now": self.codec.time(now),
            "lease_expires_at": self.codec.time(lease_expires_at),
        }
        records = await self.update_returning(sql, params)
        return records[0] if records else None

    def renew_statement(self, leases: Sequence[Lease], lease_expires_at: datetime) -> tuple[str, dict[str, Any]]:
        """Return the guarded UPDATE extending every lease whose fence matches (without RETURNING)."""
        id_condition, params = self.in_list("id", "i", [lease.record_id for lease in leases])
        fences = []
        for position, lease in enumerate(leases):
            fences.append(f"(id = :i{position} AND owner = :o{position} AND token = :t{position})")
            params[f"o{position}"] = lease.owner
            params[f"t{position}"] = lease.token
        params["lease_expires_at"] = self.codec.time(lease_expires_at)
        sql = (
            f"UPDATE {self.names.tasks} SET lease_expires_at = :lease_expires_at "
            f"WHERE status = 'running' AND {id_condition} AND ({' OR '.join(fences)})"
        )
        return sql, params

    async def renew(self, leases: Sequence[Lease], *, lease_expires_at: datetime) -> dict[str, bool]:
        """Extend every lease whose fence matches; return ``{record_id: cancel_requested}`` for those."""
        held: dict[str, bool] = {}
        for start in range(0, len(leases), 200):
            sql, params = self.renew_statement(leases[start : start + 200], lease_expires_at)
            rows = await self.db.select(f"{sql} RETURNING id, cancel_requested", params)
            held.update((row["id"], bool(row["cancel_requested"])) for row in rows)
        return held

    async def save_progress(self, updates: Sequence[tuple[Lease, str]]) -> None:
        """Set ``progress`` (JSON) of each running record whose fence matches: one guarded UPDATE per 200 updates.

        ``updates`` hold at most one update per fence (owner and token) of a record, so at most one of a record's
        updates matches it and the statement's order among them does not matter.
        """
        for start in range(0, len(updates), 200):
            chunk = updates[start : start + 200]
            id_condition, params = self.in_list("id", "i", [lease.record_id for lease, _ in chunk])
            fences, values = [], []
            for position, (lease, progress) in enumerate(chunk):
                fence = f"(id = :i{position} AND owner = :o{position} AND token = :t{position})"
                fences.append(fence)
                values.append(f"WHEN {fence} THEN :p{position}")
                params[f"o{position}"] = lease.owner
                params[f"t{position}"] = lease.token
                params[f"p{position}"] = progress
            sql = (
                f"UPDATE {self.names.tasks} SET progress = CASE {' '.join(values)} END "
                f"WHERE status = 'running' AND {id_condition} AND ({' OR '.join(fences)})"
            )
            await self.db.execute(sql, params)

    def transfer_statement(self, lease: Lease, owner: str, lease_expires_at: datetime) -> tuple[str, dict[str, Any]]:
        """Return the guarded UPDATE handing the attempt held by ``lease`` to ``owner`` (without RETURNING)."""
        sql = (
            f"UPDATE {self.names.tasks} SET owner = :new_owner, token = token + 1, "
            "lease_expires_at = :lease_expires_at "
            "WHERE id = :id AND status = 'running' AND owner = :owner AND token = :token"
        )
        params = {
            "id": lease.record_id,
            "owner": lease.owner,
            "token": lease.token,
            "new_owner": owner,
            "lease_expires_at": self.codec.time(lease_expires_at),
        }
        return sql, params

    async def transfer(self, lease: Lease, *, owner: str, lease_expires_at: datetime) -> TaskRecord | None:
        """Hand the attempt held by ``lease`` to ``owner``; the record after the change, or ``None``."""
        records = await self.update_returning(*self.transfer_statement(lease, owner, lease_expires_at))
        return records[0] if records else None

    def finish_statement(self, lease: Lease, outcome: Outcome, now: datetime) -> tuple[str, dict[str, Any]]:
        """Return the guarded UPDATE applying ``outcome`` under ``lease`` (without RETURNING)."""
        values = finish_values(outcome)
        sql = self._finish_sql.get(values.shape)
        if sql is None:
            sql = self._finish_sql[values.shape] = self._build_finish_sql(*values.shape)
        return sql, finish_params(values, lease, now, self.codec.time)

    def _build_finish_sql(self, terminal: bool, refund: bool, only_if_expired: bool) -> str:
        fence = "id = :id AND status = 'running' AND owner = :owner AND token = :token"
        if only_if_expired:
            fence += " AND lease_expires_at <= :now"
        if terminal:
            changes = (
                "status = :status, finished_at = :now, result = :result, error = :error, active_key = NULL, "
                "owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE"
            )
        else:
            # A cancel request wins over a retry: the record ends cancelled instead. cancel_requested is reset
            # last, because MySQL assigns from left to right and later expressions would see the new value.
            attempts = "CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END" if refund else "attempts"
            changes = (
                "status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'pending' END, "
                "finished_at = CASE WHEN cancel_requested THEN :now ELSE finished_at END, "
                "active_key = CASE WHEN cancel_requested THEN NULL ELSE active_key END, "
                "scheduled_at = CASE WHEN cancel_requested THEN scheduled_at ELSE :scheduled_at END, "
                f"attempts = CASE WHEN cancel_requested THEN attempts ELSE {attempts} END, "
                "error = :error, owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE"
            )
        return f"UPDATE {self.names.tasks} SET {changes} WHERE {fence}"

    def finish(
        self, lease: Lease, outcome: Outcome, *, now: datetime, claimed: TaskRecord | None = None
    ) -> Awaitable[TaskRecord | None]:
        """Apply ``outcome`` under ``lease``; the updated record, or ``None`` if the fence failed.

        An awaitable rather than a coroutine function, so that a dialect may hand out a future (a finish
        waiting for a shared statement then holds no frame). This one reads the record back: ``claimed``
        is not used.
        """
        return self._finish_alone(lease, outcome, now)

    async def _finish_alone(self, lease: Lease, outcome: Outcome, now: datetime) -> TaskRecord | None:
        sql, params = self.finish_statement(lease, outcome, now)
        terminal = as_status(outcome.status) is not TaskStatus.PENDING
        notify = (self.names.finish_channel, "id") if terminal else (self.names.wakeup_channel, "queue")
        records = await self.update_returning(sql, params, notify=notify)
        return records[0] if records else None

    async def announce_finished(self, record_id: str) -> None:
        """Tell finish waiters in other processes that ``record_id`` became terminal (PostgreSQL NOTIFY)."""
        del record_id

    async def expired_leases(self, *, now: datetime, limit: int) -> list[TaskRecord]:
        """Return up to ``limit`` running records whose lease expired at ``now``."""
        rows = await self.db.select(self.sql_expired_leases, {"now": self.codec.time(now), "limit": limit})
        return [self.decode(row) for row in rows]

    # -- control -----------------------------------------------------------------------------------

    async def cancel(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Cancel a pending record or flag a running one; the record after the change."""
        params = {"id": record_id, "now": self.codec.time(now)}
        records = await self.update_returning(self.sql_cancel_pending, params, notify=(self.names.finish_channel, "id"))
        if not records:
            records = await self.update_returning(self.sql_cancel_running, {"id": record_id})
        return records[0] if records else await self.get(record_id)

    async def requeue(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Put a failed, cancelled or expired record back to pending.

        Raises:
            DuplicateTaskError: Another active record holds the record's key.
        """
        params = {"id": record_id, "now": self.codec.time(now)}
        try:
            records = await self.update_returning(self.sql_requeue, params, notify=(self.names.wakeup_channel, "queue"))
        except UniqueViolationError as error:
            raise requeue_refused(record_id) from error
        return records[0] if records else await self.get(record_id)

    @abstractmethod
    async def expire(self, *, now: datetime, limit: int) -> int:
        """Mark up to ``limit`` pending records with ``expires_at <= now`` as expired; return how many."""

    @abstractmethod
    async def prune(self, *, finished_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` terminal records finished before ``finished_before``; return how many."""

    # -- reading -----------------------------------------------------------------------------------

    async def query(self, where: RecordFilter, *, limit: int, cursor: str | None) -> list[TaskRecord]:
        """Return up to ``limit`` records matching ``where`` with ids below ``cursor``, newest first."""
        conditions = []
        params: dict[str, Any] = {"limit": limit}
        if where.status is not None:
            conditions.append("status = :status")
            params["status"] = TaskStatus(where.status).value
        if where.queue is not None:
            conditions.append("queue = :queue")
            params["queue"] = where.queue
        if where.task_name is not None:
            conditions.append("task_name = :task_name")
            params["task_name"] = where.task_name
        if cursor is not None:
            conditions.append("id < :cursor")
            params["cursor"] = cursor
        where_sql = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"SELECT {SELECT_COLUMNS} FROM {self.names.tasks}{where_sql} ORDER BY id DESC LIMIT :limit"
        return [self.decode(row) for row in await self.db.select(sql, params)]

    async def count_by_status(self, queue: str | None, limit: int | None = None) -> dict[str, int]:
        """Count records by status (absent statuses are missing), for one queue or all; with ``limit``, a status
        with more records counts ``limit + 1``."""
        if limit is not None:
            params: dict[str, Any] = {"cap": limit + 1}
            if queue is not None:
                params["queue"] = queue
            (row,) = await self.db.select(self.sql_count_capped[queue is not None], params)
            return {status.value: int(row[f"n_{status.value}"]) for status in TaskStatus}
        if queue is None:
            rows = await self.db.select(self.sql_count_all)
        else:
            rows = await self.db.select(self.sql_count_queue, {"queue": queue})
        return {row["status"]: int(row["n"]) for row in rows}

    async def oldest_due(self, *, now: datetime, queue: str | None) -> datetime | None:
        """Return the ``scheduled_at`` of the oldest due pending record, for one queue or all."""
        params: dict[str, Any] = {"now": self.codec.time(now)}
        if queue is None:
            rows = await self.db.select(self.sql_oldest_all, params)
        else:
            params["queue"] = queue
            rows = await self.db.select(self.sql_oldest_queue, params)
        return self.codec.read_optional_time(rows[0]["oldest"]) if rows else None

    async def earliest_pending(self, queues: Sequence[str], *, now: datetime) -> datetime | None:
        """Return the earliest ``scheduled_at`` among pending records of ``queues`` (paused ones left out) not
        expired at ``now``."""
        condition, params = self.in_list("queue", "queue", queues)
        params["now"] = self.codec.time(now)
        sql = (
            f"SELECT MIN(scheduled_at) AS earliest FROM {self.names.tasks} WHERE status = 'pending' AND {condition} "
            f"AND (expires_at IS NULL OR expires_at > :now) AND {self.unpaused}"
        )
        rows = await self.db.select(sql, params)
        return self.codec.read_optional_time(rows[0]["earliest"]) if rows else None

    async def status_of(self, record_id: str) -> str | None:
        """Return the stored status of ``record_id``, or ``None`` if it does not exist."""
        rows = await self.db.select(self.sql_status, {"id": record_id})
        return str(rows[0]["status"]) if rows else None

    # -- pausing queues ----------------------------------------------------------------------------

    async def pause_queue(self, queue: str, *, now: datetime) -> bool:
        """Insert the queue's pause row unless it exists; whether this call inserted it."""
        return await self.db.execute(self.sql_pause, {"queue": queue, "now": self.codec.time(now)}) > 0

    async def resume_queue(self, queue: str) -> bool:
        """Delete the queue's pause row; whether there was one."""
        return await self.db.execute(self.sql_resume, {"queue": queue}) > 0

    async def paused_queues(self) -> dict[str, datetime]:
        """Every pause row: queue to ``paused_at``."""
        rows = await self.db.select(self.sql_paused)
        return {str(row["queue"]): self.codec.read_time(row["paused_at"]) for row in rows}

    # -- workers and locks -------------------------------------------------------------------------

    @abstractmethod
    async def upsert_worker(self, worker_id: str, info: str, expires_at: datetime) -> None:
        """Insert or replace the worker row."""

    async def purge_workers(self, horizon: datetime) -> None:
        """Delete worker rows that expired before ``horizon``."""
        await self.db.execute(self.sql_worker_purge, {"horizon": self.codec.time(horizon)})

    async def delete_worker(self, worker_id: str) -> None:
        """Delete the worker row."""
        await self.db.execute(self.sql_worker_delete, {"id": worker_id})

    async def live_workers(self, now: datetime) -> list[str]:
        """Return the stored info (JSON) of workers whose expiry is after ``now``, ordered by id."""
        rows = await self.db.select(self.sql_workers_live, {"now": self.codec.time(now)})
        return [str(row["info"]) for row in rows]

    @abstractmethod
    async def acquire_lock(self, name: str, *, owner: str, expires_at: datetime, now: datetime) -> bool:
        """Take or renew lock ``name`` unless another owner holds it unexpired at ``now``."""

    async def release_lock(self, name: str, *, owner: str) -> None:
        """Delete lock ``name`` if ``owner`` holds it."""
        await self.db.execute(self.sql_lock_release, {"name": name, "owner": owner})

    # -- shared by the families with ON CONFLICT ---------------------------------------------------

    async def upsert_worker_on_conflict(self, worker_id: str, info: str, expires_at: datetime) -> None:
        """``INSERT … ON CONFLICT (id) DO UPDATE`` (PostgreSQL, SQLite)."""
        sql = (
            f"INSERT INTO {self.names.workers} (id, info, expires_at) VALUES (:id, :info, :expires_at) "
            "ON CONFLICT (id) DO UPDATE SET info = excluded.info, expires_at = excluded.expires_at"
        )
        await self.db.execute(sql, {"id": worker_id, "info": info, "expires_at": self.codec.time(expires_at)})

    async def acquire_lock_on_conflict(self, name: str, *, owner: str, expires_at: datetime, now: datetime) -> bool:
        """One conditional upsert that returns a row only if ``owner`` holds the lock afterwards."""
        locks = self.names.locks
        sql = (
            f"INSERT INTO {locks} (name, owner, expires_at) VALUES (:name, :owner, :expires_at) "
            f"ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at "
            f"WHERE {locks}.owner = excluded.owner OR {locks}.expires_at <= :now RETURNING owner"
        )
        params = {"name": name, "owner": owner, "expires_at": self.codec.time(expires_at), "now": self.codec.time(now)}
        return bool(await self.db.select(sql, params))


class _OnSession:
    """The dialect's enqueue statements run in the caller's session (a deduplicating enqueue's ``RecordInserter``)."""

    __slots__ = ("dialect", "session")

    def __init__(self, dialect: Dialect, session: Any) -> None:
        self.dialect = dialect
        self.session = session

    async def insert_tasks(self, records: Sequence[TaskRecord]) -> set[str]:
        return await self.dialect.insert_tasks(records, session=self.session)

    async def fetch_by_ids(self, ids: Sequence[str]) -> list[TaskRecord]:
        return await self.dialect.fetch_by_ids(ids, session=self.session)

    async def fetch_active_by_keys(self, keys: Sequence[str]) -> list[TaskRecord]:
        return await self.dialect.fetch_active_by_keys(keys, session=self.session)


def _is_deadlock(error: Exception) -> bool:
    return isinstance(error, DeadlockError)

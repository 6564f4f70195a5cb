"""A complete queue backend on SQLite, written as docs/writing-a-backend.md describes: storage and atomicity only.

Every rule of the contract comes from the core: what a transition makes of a record (``litestar_queues.semantics``),
how a record is laid out as flat columns and read back, salvaging a broken row (``litestar_queues.flat``), and how
a claim isolates a record that no longer decodes (``litestar_queues.salvage``). What is left here is SQL: which
rows a call selects, and one ``BEGIN IMMEDIATE`` transaction per call, which makes it atomic across every
connection to the file. The methods never await, so each one is also atomic on the event loop.

It uses the standard library's blocking ``sqlite3``, which suits one machine and a small local file; an
application would use an async driver. tests/docs/test_example_backend.py runs the whole conformance suite on it.
"""

# ruff: noqa: S608 - statements are built from constants and column names only; every value is a bound parameter

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, ClassVar

import msgspec

from litestar_queues.backend import Capability, QueueBackend
from litestar_queues.flat import FIELDS, from_micros, record_fields, record_from_fields, to_micros
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
from litestar_queues.salvage import isolate_undecodable, isolate_undecodable_record
from litestar_queues.semantics import (
    cancelled_record,
    check_outcome,
    claimed_record,
    expired_record,
    finished_record,
    holds,
    lease_expired,
    lease_expiry,
    lease_state,
    queue_statistics,
    record_page,
    renewed_record,
    requeue_conflict,
    requeued_record,
)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS tasks ({", ".join(FIELDS)}, PRIMARY KEY (id)) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS tasks_active_key ON tasks (key) WHERE status IN ('pending', 'running');
CREATE INDEX IF NOT EXISTS tasks_key ON tasks (key, created_at);
CREATE INDEX IF NOT EXISTS tasks_due ON tasks (queue, status, priority DESC, scheduled_at, id);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status, queue);
CREATE TABLE IF NOT EXISTS pauses (queue PRIMARY KEY, paused_at);
CREATE TABLE IF NOT EXISTS workers (id PRIMARY KEY, expires_at, info);
CREATE TABLE IF NOT EXISTS locks (name PRIMARY KEY, owner, expires_at);
"""
DUE = "status = 'pending' AND scheduled_at <= :now AND (expires_at IS NULL OR expires_at > :now)"
TERMINAL = "status IN ('completed', 'failed', 'cancelled', 'expired')"
INSERT = f"INSERT INTO tasks VALUES ({', '.join(':' + name for name in FIELDS)})"
_decode_worker = msgspec.json.Decoder(WorkerInfo).decode


def _row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, values, strict=True)}


class SQLiteBackendConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Where the database file lives."""

    path: str

    def create_backend(self) -> SQLiteBackend:
        """The backend this configuration describes (``QueueConfig(queue_backend=SQLiteBackendConfig(...))``)."""
        return SQLiteBackend(self)


class SQLiteBackend(QueueBackend):
    """Records in one SQLite file; every instance over the file sees the same queues."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    name: ClassVar[str] = "sqlite-example"
    local_only = True

    def __init__(self, config: SQLiteBackendConfig) -> None:
        """Create the backend; :meth:`open` connects."""
        self.config = config
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        """Connect and create the tables."""
        db = sqlite3.connect(self.config.path, isolation_level=None, check_same_thread=False)
        db.row_factory = _row
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA busy_timeout = 5000")
        db.executescript(SCHEMA)
        self._db = db

    async def close(self) -> None:
        """Disconnect."""
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- storage ---------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        if db is None:
            raise RuntimeError("the backend is not open")
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _select(self, db: sqlite3.Connection, where: str, **params: Any) -> list[TaskRecord]:
        return [record_from_fields(row) for row in db.execute(f"SELECT * FROM tasks WHERE {where}", params)]

    def _get(self, db: sqlite3.Connection, record_id: str) -> TaskRecord | None:
        found = self._select(db, "id = :id", id=record_id)
        return found[0] if found else None

    def _holder(self, db: sqlite3.Connection, key: str) -> TaskRecord | None:
        found = self._select(db, "key = :key AND status IN ('pending', 'running')", key=key)
        return found[0] if found else None

    def _update(self, db: sqlite3.Connection, before: TaskRecord, after: TaskRecord) -> TaskRecord:
        """Write the fields a transition changed (so a broken column the transition does not touch stays as is)."""
        old, new = record_fields(before), record_fields(after)
        changed = {name: value for name, value in new.items() if old[name] != value}
        if changed:
            assignments = ", ".join(f"{name} = :{name}" for name in changed)
            db.execute(f"UPDATE tasks SET {assignments} WHERE id = :id", {**changed, "id": after.id})
        return after

    # -- writing work ----------------------------------------------------------------------------

    async def enqueue(self, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        """Store each record unless its id exists or an active record holds its key, one by one in order."""
        outcomes = []
        with self._transaction() as db:
            for record in records:
                existing = self._get(db, record.id) or (None if record.key is None else self._holder(db, record.key))
                if existing is not None:
                    outcomes.append(EnqueueOutcome(existing, created=False))
                    continue
                fields = record_fields(record)
                db.execute(INSERT, fields)
                outcomes.append(EnqueueOutcome(record_from_fields(fields), created=True))
        return outcomes

    async def get(self, record_id: str) -> TaskRecord | None:
        """The record, or ``None``."""
        with self._transaction() as db:
            return self._get(db, record_id)

    async def get_by_key(self, key: str) -> TaskRecord | None:
        """The active holder of ``key``, else the most recently created record with it."""
        with self._transaction() as db:
            latest = self._select(db, "key = :key ORDER BY created_at DESC, id DESC LIMIT 1", key=key)
            return self._holder(db, key) or (latest[0] if latest else None)

    # -- claiming and running --------------------------------------------------------------------

    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_seconds: float
    ) -> list[TaskRecord]:
        """Claim up to ``limit`` due records of ``queues`` that are not paused, in due order."""
        if limit <= 0 or not queues:
            return []
        names = {f"q{position}": queue for position, queue in enumerate(dict.fromkeys(queues))}
        lease_expires_at = lease_expiry(now, lease_seconds)
        with self._transaction() as db:
            due = self._select(
                db,
                f"{DUE} AND queue IN ({', '.join(':' + name for name in names)})"
                " AND queue NOT IN (SELECT queue FROM pauses) ORDER BY priority DESC, scheduled_at, id LIMIT :limit",
                now=to_micros(now),
                limit=limit,
                **names,
            )
            claimed = [
                self._update(
                    db, record, claimed_record(record, owner=owner, now=now, lease_expires_at=lease_expires_at)
                )
                for record in due
            ]
        return await isolate_undecodable(self, claimed, now=now)

    async def claim_record(
        self, record_id: str, *, owner: str, now: datetime, lease_seconds: float
    ) -> TaskRecord | None:
        """Claim the pending record ``record_id`` whatever its ``scheduled_at``."""
        with self._transaction() as db:
            record = self._get(db, record_id)
            if record is None or record.status != "pending":
                return None
            lease_expires_at = lease_expiry(now, lease_seconds)
            claimed = self._update(
                db, record, claimed_record(record, owner=owner, now=now, lease_expires_at=lease_expires_at)
            )
        return await isolate_undecodable_record(self, claimed, now=now)

    async def renew(self, leases: Sequence[Lease], *, now: datetime, lease_seconds: float) -> dict[str, LeaseState]:
        """Extend each lease whose fence matches; report every lease's state."""
        states = {}
        with self._transaction() as db:
            for lease in leases:
                record = self._get(db, lease.record_id)
                states[lease.record_id] = lease_state(record, lease)
                if holds(record, lease):
                    self._update(db, record, renewed_record(record, lease_expiry(now, lease_seconds)))
        return states

    async def save_progress(self, updates: Sequence[tuple[Lease, TaskProgress]]) -> None:
        """Store the progress of each attempt whose fence matches."""
        with self._transaction() as db:
            for lease, progress in updates:
                record = self._get(db, lease.record_id)
                if holds(record, lease):
                    self._update(db, record, msgspec.structs.replace(record, progress=progress))

    async def finish(
        self, lease: Lease, outcome: Outcome, *, now: datetime, claimed: TaskRecord | None = None
    ) -> TaskRecord | None:
        """End the attempt held by ``lease``; ``None`` (changing nothing) if the fence fails."""
        check_outcome(outcome)
        with self._transaction() as db:
            record = self._get(db, lease.record_id)
            if not holds(record, lease) or (outcome.only_if_lease_expired and not lease_expired(record, now)):
                return None
            return self._update(db, record, finished_record(record, outcome, now))

    async def expired_leases(self, *, now: datetime, limit: int) -> list[TaskRecord]:
        """Up to ``limit`` running records whose lease expired at ``now``."""
        if limit <= 0:
            return []
        with self._transaction() as db:
            where = "status = 'running' AND lease_expires_at <= :now LIMIT :limit"
            return self._select(db, where, now=to_micros(now), limit=limit)

    # -- control ---------------------------------------------------------------------------------

    async def cancel(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Cancel a pending record, flag a running one, leave a terminal one alone."""
        with self._transaction() as db:
            record = self._get(db, record_id)
            return None if record is None else self._update(db, record, cancelled_record(record, now))

    async def requeue(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Put a failed, cancelled or expired record back to pending (``DuplicateTaskError`` if its key is taken)."""
        with self._transaction() as db:
            record = self._get(db, record_id)
            if record is None:
                return None
            holder = None if record.key is None else self._holder(db, record.key)
            conflict = requeue_conflict(record, None if holder is None else holder.id)
            if conflict is not None:
                raise conflict
            return self._update(db, record, requeued_record(record, now))

    async def expire(self, *, now: datetime, limit: int) -> int:
        """Expire up to ``limit`` pending records with ``expires_at <= now``; how many."""
        if limit <= 0:
            return 0
        with self._transaction() as db:
            where = "status = 'pending' AND expires_at <= :now LIMIT :limit"
            expiring = self._select(db, where, now=to_micros(now), limit=limit)
            for record in expiring:
                self._update(db, record, expired_record(record, now))
        return len(expiring)

    async def prune(self, *, finished_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` terminal records finished before ``finished_before``; how many."""
        if limit <= 0:
            return 0
        with self._transaction() as db:
            chosen = f"SELECT id FROM tasks WHERE {TERMINAL} AND finished_at < :before LIMIT :limit"
            params = {"before": to_micros(finished_before), "limit": limit}
            return db.execute(f"DELETE FROM tasks WHERE id IN ({chosen})", params).rowcount

    # -- reading ---------------------------------------------------------------------------------

    async def query(self, where: RecordFilter, *, limit: int, cursor: str | None = None) -> RecordPage:
        """Records matching ``where``, newest first, ``limit`` per page."""
        if limit <= 0:
            return RecordPage([], None)
        params = {
            "status": None if where.status is None else where.status.value,
            "queue": where.queue,
            "task_name": where.task_name,
            "cursor": cursor,
        }
        conditions = [f"{name} = :{name}" for name in ("status", "queue", "task_name") if params[name] is not None]
        conditions += ["id < :cursor"] if cursor is not None else []
        sql = f"{' AND '.join(conditions) or 'TRUE'} ORDER BY id DESC LIMIT :limit"
        with self._transaction() as db:
            return record_page(self._select(db, sql, **params, limit=limit + 1), limit)

    async def statistics(
        self, *, now: datetime, queue: str | None = None, count_limit: int | None = None
    ) -> QueueStatistics:
        """A count for every status and the oldest due ``scheduled_at``, of ``queue`` or all queues."""
        of_queue = "" if queue is None else " AND queue = :queue"
        params = {"now": to_micros(now), "queue": queue}
        with self._transaction() as db:
            counts = db.execute(f"SELECT status, COUNT(*) AS n FROM tasks WHERE TRUE{of_queue} GROUP BY status", params)
            pairs = [(row["status"], row["n"]) for row in counts]
            oldest = db.execute(f"SELECT MIN(scheduled_at) AS at FROM tasks WHERE {DUE}{of_queue}", params).fetchone()
        at = None if oldest["at"] is None else from_micros(oldest["at"])
        return queue_statistics(pairs, oldest_pending_at=at, queue=queue, count_limit=count_limit)

    # -- pausing queues --------------------------------------------------------------------------

    async def pause_queue(self, queue: str, *, now: datetime) -> bool:
        """Pause ``queue``; whether this call paused it."""
        with self._transaction() as db:
            return db.execute("INSERT OR IGNORE INTO pauses VALUES (?, ?)", (queue, to_micros(now))).rowcount == 1

    async def resume_queue(self, queue: str) -> bool:
        """Resume ``queue``; whether it was paused."""
        with self._transaction() as db:
            return db.execute("DELETE FROM pauses WHERE queue = ?", (queue,)).rowcount == 1

    async def paused_queues(self) -> dict[str, datetime]:
        """The paused queues and when each was paused."""
        with self._transaction() as db:
            return {row["queue"]: from_micros(row["paused_at"]) for row in db.execute("SELECT * FROM pauses")}

    # -- workers and locks -----------------------------------------------------------------------

    async def register_worker(self, info: WorkerInfo, *, ttl_seconds: float) -> None:
        """Insert or replace ``info``, live until ``last_heartbeat_at + ttl_seconds``."""
        expires_at = to_micros(info.last_heartbeat_at + timedelta(seconds=ttl_seconds))
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO workers VALUES (?, ?, ?)", (info.id, expires_at, msgspec.json.encode(info))
            )

    async def remove_worker(self, worker_id: str) -> None:
        """Forget ``worker_id``."""
        with self._transaction() as db:
            db.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

    async def list_workers(self, *, now: datetime) -> list[WorkerInfo]:
        """The workers live at ``now``, by id."""
        with self._transaction() as db:
            rows = db.execute("SELECT info FROM workers WHERE expires_at > ? ORDER BY id", (to_micros(now),))
            return [_decode_worker(row["info"]) for row in rows]

    async def acquire_lock(self, name: str, *, owner: str, ttl_seconds: float, now: datetime) -> bool:
        """Take or renew lock ``name`` unless another owner holds it unexpired at ``now``."""
        with self._transaction() as db:
            held = db.execute("SELECT owner, expires_at FROM locks WHERE name = ?", (name,)).fetchone()
            if held is not None and held["owner"] != owner and held["expires_at"] > to_micros(now):
                return False
            expires_at = to_micros(now + timedelta(seconds=ttl_seconds))
            db.execute("INSERT OR REPLACE INTO locks VALUES (?, ?, ?)", (name, owner, expires_at))
            return True

    async def release_lock(self, name: str, *, owner: str) -> None:
        """Release lock ``name`` if ``owner`` holds it."""
        with self._transaction() as db:
            db.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))

"""The yardstick for the SQLite backend: a straightforward queue backend on plain ``aiosqlite`` and one connection.

Not a shipped package: ``sqlite_drain.py`` drains through it beside the SQLSpec backend. It is the docs' example
backend (docs/examples/sqlite_backend.py, whose schema, statements and core helpers it imports) with every call
awaited on one aiosqlite connection: one ``BEGIN IMMEDIATE`` transaction per operation, which an ``asyncio.Lock``
keeps from interleaving on the shared connection, each committed before the call returns. The worker's two hot
operations are single statements as a direct implementation would write them: a claim is one
``UPDATE … RETURNING``, and the terminal finish of a claimed attempt one guarded ``UPDATE`` (a commit per finish).
The file is set up as the SQLSpec backend's is (WAL, ``synchronous = NORMAL``, a busy timeout), so both are as
durable. It passes the conformance suite's core lifecycle: enqueue, claim, leases, fencing, retries
(``sqlite_drain.py --check`` runs those classes on it).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import aiosqlite
import msgspec

from litestar_queues.backend import Capability, QueueBackend
from litestar_queues.flat import from_micros, record_fields, record_from_fields, to_micros
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
    TaskStatus,
    WorkerInfo,
    due_order,
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

_EXAMPLE = Path(__file__).resolve().parents[1] / "docs/examples/sqlite_backend.py"
_spec = importlib.util.spec_from_file_location("sqlite_backend_example", _EXAMPLE)
assert _spec is not None and _spec.loader is not None
example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(example)

_decode_worker = msgspec.json.Decoder(WorkerInfo).decode


class ReferenceConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Where the database file lives."""

    path: str

    def create_backend(self) -> ReferenceBackend:
        """The backend (``QueueConfig(queue_backend=ReferenceConfig(path=...))``)."""
        return ReferenceBackend(self)


class ReferenceBackend(QueueBackend):
    """Records in one SQLite file through one aiosqlite connection."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    name: ClassVar[str] = "aiosqlite-reference"
    local_only = True

    def __init__(self, config: ReferenceConfig) -> None:
        self.config = config
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Connect (WAL, ``synchronous = NORMAL``, a busy timeout: as the SQLSpec backend does); create the tables."""
        db = await aiosqlite.connect(self.config.path, isolation_level=None, timeout=30.0)
        db.row_factory = example._row
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.executescript(example.SCHEMA)
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    # -- storage ---------------------------------------------------------------------------------

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        db = self._db
        if db is None:
            raise RuntimeError("the backend is not open")
        async with self._lock:
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")

    @asynccontextmanager
    async def _statement(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection for one autocommit statement (between, never inside, the transactions of other calls)."""
        db = self._db
        if db is None:
            raise RuntimeError("the backend is not open")
        async with self._lock:
            yield db

    async def _select(self, db: aiosqlite.Connection, where: str, **params: Any) -> list[TaskRecord]:
        rows = await db.execute_fetchall(f"SELECT * FROM tasks WHERE {where}", params)
        return [record_from_fields(row) for row in rows]

    async def _get(self, db: aiosqlite.Connection, record_id: str) -> TaskRecord | None:
        found = await self._select(db, "id = :id", id=record_id)
        return found[0] if found else None

    async def _holder(self, db: aiosqlite.Connection, key: str) -> TaskRecord | None:
        found = await self._select(db, "key = :key AND status IN ('pending', 'running')", key=key)
        return found[0] if found else None

    async def _update(self, db: aiosqlite.Connection, before: TaskRecord, after: TaskRecord) -> TaskRecord:
        old, new = record_fields(before), record_fields(after)
        changed = {name: value for name, value in new.items() if old[name] != value}
        if changed:
            assignments = ", ".join(f"{name} = :{name}" for name in changed)
            await db.execute(f"UPDATE tasks SET {assignments} WHERE id = :id", {**changed, "id": after.id})
        return after

    # -- writing work ----------------------------------------------------------------------------

    async def enqueue(self, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        outcomes = []
        async with self._transaction() as db:
            for record in records:
                existing = await self._get(db, record.id)
                if existing is None and record.key is not None:
                    existing = await self._holder(db, record.key)
                if existing is not None:
                    outcomes.append(EnqueueOutcome(existing, created=False))
                    continue
                fields = record_fields(record)
                await db.execute(example.INSERT, fields)
                outcomes.append(EnqueueOutcome(record_from_fields(fields), created=True))
        return outcomes

    async def get(self, record_id: str) -> TaskRecord | None:
        async with self._transaction() as db:
            return await self._get(db, record_id)

    async def get_by_key(self, key: str) -> TaskRecord | None:
        async with self._transaction() as db:
            latest = await self._select(db, "key = :key ORDER BY created_at DESC, id DESC LIMIT 1", key=key)
            return await self._holder(db, key) or (latest[0] if latest else None)

    # -- claiming and running --------------------------------------------------------------------

    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_seconds: float
    ) -> list[TaskRecord]:
        """One ``UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING *``: SQLite's write lock makes it atomic."""
        if limit <= 0 or not queues:
            return []
        names = {f"q{position}": queue for position, queue in enumerate(dict.fromkeys(queues))}
        sql = (
            "UPDATE tasks SET status = 'running', owner = :owner, token = token + 1, attempts = attempts + 1, "
            "started_at = :now, lease_expires_at = :lease_expires_at WHERE id IN (SELECT id FROM tasks WHERE "
            f"{example.DUE} AND queue IN ({', '.join(':' + name for name in names)}) AND queue NOT IN "
            "(SELECT queue FROM pauses) ORDER BY priority DESC, scheduled_at, id LIMIT :limit) RETURNING *"
        )
        params = {
            "owner": owner,
            "now": to_micros(now),
            "lease_expires_at": to_micros(lease_expiry(now, lease_seconds)),
            "limit": limit,
            **names,
        }
        async with self._statement() as db:
            claimed = [record_from_fields(row) for row in await db.execute_fetchall(sql, params)]
        claimed.sort(key=due_order)
        return await isolate_undecodable(self, claimed, now=now)

    async def claim_record(
        self, record_id: str, *, owner: str, now: datetime, lease_seconds: float
    ) -> TaskRecord | None:
        async with self._transaction() as db:
            record = await self._get(db, record_id)
            if record is None or record.status != "pending":
                return None
            lease_expires_at = lease_expiry(now, lease_seconds)
            claimed = await self._update(
                db, record, claimed_record(record, owner=owner, now=now, lease_expires_at=lease_expires_at)
            )
        return await isolate_undecodable_record(self, claimed, now=now)

    async def renew(self, leases: Sequence[Lease], *, now: datetime, lease_seconds: float) -> dict[str, LeaseState]:
        states = {}
        async with self._transaction() as db:
            for lease in leases:
                record = await self._get(db, lease.record_id)
                states[lease.record_id] = lease_state(record, lease)
                if holds(record, lease):
                    await self._update(db, record, renewed_record(record, lease_expiry(now, lease_seconds)))
        return states

    async def save_progress(self, updates: Sequence[tuple[Lease, TaskProgress]]) -> None:
        async with self._transaction() as db:
            for lease, progress in updates:
                record = await self._get(db, lease.record_id)
                if holds(record, lease):
                    await self._update(db, record, msgspec.structs.replace(record, progress=progress))

    async def finish(
        self, lease: Lease, outcome: Outcome, *, now: datetime, claimed: TaskRecord | None = None
    ) -> TaskRecord | None:
        if (
            claimed is not None
            and check_outcome(outcome) is not TaskStatus.PENDING
            and not outcome.only_if_lease_expired
        ):
            # A terminal outcome of the attempt the worker claimed: one guarded UPDATE of the fields it changes.
            old, new = record_fields(claimed), record_fields(finished_record(claimed, outcome, now))
            changed = {name: value for name, value in new.items() if old[name] != value}
            assignments = ", ".join(f"{name} = :{name}" for name in changed)
            sql = (
                f"UPDATE tasks SET {assignments} WHERE id = :id AND status = 'running' AND owner = :fence_owner "
                "AND token = :fence_token RETURNING *"
            )
            params = {**changed, "id": lease.record_id, "fence_owner": lease.owner, "fence_token": lease.token}
            async with self._statement() as db:
                rows = list(await db.execute_fetchall(sql, params))
            return record_from_fields(rows[0]) if rows else None
        async with self._transaction() as db:
            record = await self._get(db, lease.record_id)
            if not holds(record, lease) or (outcome.only_if_lease_expired and not lease_expired(record, now)):
                return None
            return await self._update(db, record, finished_record(record, outcome, now))

    async def expired_leases(self, *, now: datetime, limit: int) -> list[TaskRecord]:
        if limit <= 0:
            return []
        async with self._transaction() as db:
            where = "status = 'running' AND lease_expires_at <= :now LIMIT :limit"
            return await self._select(db, where, now=to_micros(now), limit=limit)

    # -- control ---------------------------------------------------------------------------------

    async def cancel(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        async with self._transaction() as db:
            record = await self._get(db, record_id)
            return None if record is None else await self._update(db, record, cancelled_record(record, now))

    async def requeue(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        async with self._transaction() as db:
            record = await self._get(db, record_id)
            if record is None:
                return None
            holder = None if record.key is None else await self._holder(db, record.key)
            conflict = requeue_conflict(record, None if holder is None else holder.id)
            if conflict is not None:
                raise conflict
            return await self._update(db, record, requeued_record(record, now))

    async def expire(self, *, now: datetime, limit: int) -> int:
        if limit <= 0:
            return 0
        async with self._transaction() as db:
            where = "status = 'pending' AND expires_at <= :now LIMIT :limit"
            expiring = await self._select(db, where, now=to_micros(now), limit=limit)
            for record in expiring:
                await self._update(db, record, expired_record(record, now))
        return len(expiring)

    async def prune(self, *, finished_before: datetime, limit: int) -> int:
        if limit <= 0:
            return 0
        async with self._transaction() as db:
            chosen = f"SELECT id FROM tasks WHERE {example.TERMINAL} AND finished_at < :before LIMIT :limit"
            params = {"before": to_micros(finished_before), "limit": limit}
            cursor = await db.execute(f"DELETE FROM tasks WHERE id IN ({chosen})", params)
            return cursor.rowcount

    # -- reading ---------------------------------------------------------------------------------

    async def query(self, where: RecordFilter, *, limit: int, cursor: str | None = None) -> RecordPage:
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
        async with self._transaction() as db:
            return record_page(await self._select(db, sql, **params, limit=limit + 1), limit)

    async def statistics(
        self, *, now: datetime, queue: str | None = None, count_limit: int | None = None
    ) -> QueueStatistics:
        of_queue = "" if queue is None else " AND queue = :queue"
        params = {"now": to_micros(now), "queue": queue}
        async with self._transaction() as db:
            counts = await db.execute_fetchall(
                f"SELECT status, COUNT(*) AS n FROM tasks WHERE TRUE{of_queue} GROUP BY status", params
            )
            pairs = [(row["status"], row["n"]) for row in counts]
            oldest_sql = f"SELECT MIN(scheduled_at) AS at FROM tasks WHERE {example.DUE}{of_queue}"
            (oldest,) = await db.execute_fetchall(oldest_sql, params)
        at = None if oldest["at"] is None else from_micros(oldest["at"])
        return queue_statistics(pairs, oldest_pending_at=at, queue=queue, count_limit=count_limit)

    # -- pausing queues --------------------------------------------------------------------------

    async def pause_queue(self, queue: str, *, now: datetime) -> bool:
        async with self._transaction() as db:
            cursor = await db.execute("INSERT OR IGNORE INTO pauses VALUES (?, ?)", (queue, to_micros(now)))
            return cursor.rowcount == 1

    async def resume_queue(self, queue: str) -> bool:
        async with self._transaction() as db:
            return (await db.execute("DELETE FROM pauses WHERE queue = ?", (queue,))).rowcount == 1

    async def paused_queues(self) -> dict[str, datetime]:
        async with self._transaction() as db:
            rows = await db.execute_fetchall("SELECT * FROM pauses")
            return {row["queue"]: from_micros(row["paused_at"]) for row in rows}

    # -- workers and locks -----------------------------------------------------------------------

    async def register_worker(self, info: WorkerInfo, *, ttl_seconds: float) -> None:
        expires_at = to_micros(info.last_heartbeat_at + timedelta(seconds=ttl_seconds))
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO workers VALUES (?, ?, ?)", (info.id, expires_at, msgspec.json.encode(info))
            )

    async def remove_worker(self, worker_id: str) -> None:
        async with self._transaction() as db:
            await db.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

    async def list_workers(self, *, now: datetime) -> list[WorkerInfo]:
        async with self._transaction() as db:
            rows = await db.execute_fetchall(
                "SELECT info FROM workers WHERE expires_at > ? ORDER BY id", (to_micros(now),)
            )
            return [_decode_worker(row["info"]) for row in rows]

    async def acquire_lock(self, name: str, *, owner: str, ttl_seconds: float, now: datetime) -> bool:
        async with self._transaction() as db:
            rows = list(await db.execute_fetchall("SELECT owner, expires_at FROM locks WHERE name = ?", (name,)))
            if rows and rows[0]["owner"] != owner and rows[0]["expires_at"] > to_micros(now):
                return False
            expires_at = to_micros(now + timedelta(seconds=ttl_seconds))
            await db.execute("INSERT OR REPLACE INTO locks VALUES (?, ?, ?)", (name, owner, expires_at))
            return True

    async def release_lock(self, name: str, *, owner: str) -> None:
        async with self._transaction() as db:
            await db.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))

"""MySQL 8.0.1+ and MariaDB 10.6+ (asyncmy): claims as short READ COMMITTED transactions.

Neither server can ``LIMIT`` inside an ``IN (subquery)`` and MariaDB has no ``UPDATE … RETURNING``,
so a claim is ``SELECT <rows> … FOR UPDATE SKIP LOCKED`` followed by ``UPDATE … WHERE id IN (…)``
in one transaction; the claimed records are computed from the locked rows (the update is fully
determined by them). READ COMMITTED avoids the gap locks REPEATABLE READ would take on the scanned
index ranges, which would block concurrent enqueues until the claim commits.

MySQL reports *changed* rows, not matched rows, unless the client sets ``CLIENT_FOUND_ROWS``
(asyncmy does not). A row count therefore decides an outcome only where the update always changes
the status; elsewhere a read decides.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, ClassVar

from sqlspec.exceptions import DeadlockError, UniqueViolationError

from litestar_queues.backend import claimed_record, finished_record
from litestar_queues.backends.sqlspec.database import Database
from litestar_queues.backends.sqlspec.dialects.base import SELECT_COLUMNS, TERMINAL_SQL, Dialect, chunked
from litestar_queues.backends.sqlspec.names import Family, TableNames
from litestar_queues.errors import ConfigurationError, DuplicateTaskError
from litestar_queues.records import Lease, Outcome, TaskRecord, TaskStatus, as_status
from litestar_queues.sql.rows import TASK_COLUMNS, MySQLValueCodec, encode_task

__all__ = ("MySQLDialect",)

_ROWS_PER_CHUNK = 2000
"""Rows per insert transaction (asyncmy splits each into multi-row statements of at most 1 MB)."""
_ATTEMPTS = 8
"""Tries of a transaction that lost a duplicate-key race (or a deadlock) before the error propagates."""
_SAVEPOINT = "litestar_queues_enqueue"
_VERSION_PATTERN = re.compile(r"(\d+)\.(\d+)\.(\d+)")


async def _select_native(session: Any, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    """Run a ``%s`` statement on the asyncmy connection of a SQLSpec session; dictionary rows.

    For ``IN`` lists as long as a bulk enqueue: SQLSpec would parse thousands of placeholders with
    sqlglot (seconds), and with parsing switched off older SQLSpec releases return no rows.
    """
    from asyncmy.cursors import DictCursor  # noqa: PLC0415 - optional driver

    async with session.connection.cursor(DictCursor) as cursor:
        await cursor.execute(sql, tuple(params))
        rows: list[dict[str, Any]] = list(await cursor.fetchall())
        return rows


class MySQLDialect(Dialect):
    """MySQL 8.0.1+ / MariaDB 10.6+ (``SKIP LOCKED``), InnoDB."""

    family: ClassVar[Family] = "mysql"

    def __init__(self, db: Database, names: TableNames) -> None:
        """Build the statements."""
        super().__init__(db, names, MySQLValueCodec())
        tasks = names.tasks
        self._insert_params = [f"p_{column}" for column in TASK_COLUMNS]
        placeholders = ", ".join(f":{name}" for name in self._insert_params)
        self.sql_insert = f"INSERT INTO {tasks} ({', '.join(TASK_COLUMNS)}) VALUES ({placeholders})"
        self.sql_insert_many = (
            f"INSERT INTO {tasks} ({', '.join(TASK_COLUMNS)}) VALUES ({', '.join('%s' for _ in TASK_COLUMNS)})"
        )
        self.sql_claim_record = f"SELECT {SELECT_COLUMNS} FROM {tasks} WHERE id = :id AND status = 'pending' FOR UPDATE"
        self.sql_expire_select = (
            f"SELECT id FROM {tasks} WHERE status = 'pending' AND expires_at <= :now ORDER BY expires_at "
            "LIMIT :limit FOR UPDATE SKIP LOCKED"
        )
        self.sql_prune = (
            f"DELETE FROM {tasks} WHERE status IN {TERMINAL_SQL} AND finished_at < :before "
            "ORDER BY finished_at LIMIT :limit"
        )
        # IGNORE turns only the duplicate key into "0 rows" here: queue names are checked by the core (at most 255
        # characters, no NUL), so no other error is left to downgrade.
        self.sql_pause = f"INSERT IGNORE INTO {names.pauses} (queue, paused_at) VALUES (:queue, :now)"
        self.sql_worker_upsert = f"REPLACE INTO {names.workers} (id, info, expires_at) VALUES (:id, :info, :expires_at)"
        locks = names.locks
        self.sql_lock_insert = (
            f"INSERT INTO {locks} (name, owner, expires_at) VALUES (:name, :owner, :expires_at) "
            "ON DUPLICATE KEY UPDATE name = name"
        )
        self.sql_lock_take = (
            f"UPDATE {locks} SET owner = :owner, expires_at = :expires_at "
            "WHERE name = :name AND (owner = :owner OR expires_at <= :now)"
        )
        self.sql_lock_owner = f"SELECT owner FROM {locks} WHERE name = :name"

    # -- lifecycle ---------------------------------------------------------------------------------

    async def check_server(self) -> None:
        """Require ``SKIP LOCKED``: MySQL 8.0.1+ or MariaDB 10.6+.

        Raises:
            ConfigurationError: The server is older.
        """
        rows = await self.db.select("SELECT VERSION() AS version")
        version = str(rows[0]["version"])
        match = _VERSION_PATTERN.search(version)
        numbers = tuple(int(part) for part in match.groups()) if match else (0, 0, 0)
        required = (10, 6, 0) if "mariadb" in version.lower() else (8, 0, 1)
        if numbers < required:
            msg = (
                f"the SQLSpec backend needs MySQL 8.0.1+ or MariaDB 10.6+ (FOR UPDATE SKIP LOCKED); "
                f"the server is {version}"
            )
            raise ConfigurationError(msg)

    @asynccontextmanager
    async def migration_guard(self, session: Any) -> AsyncIterator[bool | None]:
        """Hold a named server lock (``GET_LOCK``) while migrating; MySQL DDL is not transactional anyway."""
        name = f"litestar_queues:{self.names.extension}"[:64]
        rows = await session.select("SELECT GET_LOCK(:name, 300) AS locked", {"name": name})
        if not rows or rows[0]["locked"] != 1:
            msg = f"timed out waiting for the migration lock {name!r}"
            raise ConfigurationError(msg)
        try:
            yield None
        finally:
            await session.select("SELECT RELEASE_LOCK(:name) AS released", {"name": name})

    # -- helpers -----------------------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        """A READ COMMITTED transaction in one session, committed when the block ends."""
        async with self.db.session() as session:
            await session.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            await session.begin()
            yield session

    async def select_where_in(self, column: str, values: Sequence[str], *, session: Any = None) -> list[dict[str, Any]]:
        """``IN (…)`` over a list as long as a bulk enqueue (see :func:`_select_native`).

        In the caller's ``session`` a locking read, which sees the latest committed rows rather than the snapshot
        of a REPEATABLE READ transaction.
        """
        placeholders = ", ".join("%s" for _ in values)
        sql = f"SELECT {SELECT_COLUMNS} FROM {self.names.tasks} WHERE {column} IN ({placeholders})"
        if session is not None:
            return await _select_native(session, f"{sql} LOCK IN SHARE MODE", values)
        async with self.db.session() as own:
            return await _select_native(own, sql, values)

    # -- writing work ------------------------------------------------------------------------------

    async def insert_tasks(self, records: Sequence[TaskRecord], *, session: Any = None) -> set[str]:
        """Insert chunk by chunk; a chunk that hits an existing id or key is redone without the conflicting rows.

        Each chunk is one ``executemany`` of the one-row INSERT, which asyncmy rewrites into multi-row
        INSERT statements of up to 1 MB each, inside one transaction so a duplicate rolls the whole
        chunk back. A lone record is a plain autocommit INSERT. On a duplicate key the chunk is retried
        in a transaction that first locks the rows already holding its ids or keys (``FOR UPDATE``), so
        those cannot become terminal meanwhile, and inserts the rest. In the caller's ``session`` every chunk locks
        first (see :meth:`_insert_in`).
        """
        id_column = TASK_COLUMNS.index("id")
        rows = [encode_task(record, self.codec) for record in records]
        if session is not None:
            return await self._insert_in(session, rows)
        if len(rows) == 1:
            try:
                await self.db.execute(self.sql_insert, dict(zip(self._insert_params, rows[0], strict=True)))
            except UniqueViolationError:
                return await self._insert_avoiding_conflicts(rows)
            return {rows[0][id_column]}
        inserted: set[str] = set()
        for chunk in chunked(rows, _ROWS_PER_CHUNK):
            try:
                async with self.transaction() as own:
                    await own.execute_many(self.sql_insert_many, list(chunk))
            except UniqueViolationError:
                inserted.update(await self._insert_avoiding_conflicts(chunk))
            else:
                inserted.update(row[id_column] for row in chunk)
        return inserted

    async def _insert_avoiding_conflicts(self, chunk: Sequence[tuple[Any, ...]]) -> set[str]:
        for attempt in range(_ATTEMPTS):
            try:
                async with self.transaction() as session:
                    return await self._insert_free(session, chunk)
            except (UniqueViolationError, DeadlockError):
                if attempt == _ATTEMPTS - 1:
                    raise
        return set()  # pragma: no cover - the loop returns or raises

    async def _insert_free(self, session: Any, chunk: Sequence[tuple[Any, ...]]) -> set[str]:
        """Lock the rows already holding the chunk's ids or keys (``FOR UPDATE``: they cannot become terminal
        meanwhile, and an uncommitted holder is waited for), then insert the other rows."""
        id_column = TASK_COLUMNS.index("id")
        key_column = TASK_COLUMNS.index("active_key")
        ids = [row[id_column] for row in chunk]
        keys = [row[key_column] for row in chunk if row[key_column] is not None]
        where = f"id IN ({', '.join('%s' for _ in ids)})"
        if keys:
            where += f" OR active_key IN ({', '.join('%s' for _ in keys)})"
        sql = f"SELECT id, active_key FROM {self.names.tasks} WHERE {where} FOR UPDATE"
        existing = await _select_native(session, sql, [*ids, *keys])
        taken_ids = {row["id"] for row in existing}
        taken_keys = {row["active_key"] for row in existing if row["active_key"] is not None}
        fresh = [row for row in chunk if row[id_column] not in taken_ids and row[key_column] not in taken_keys]
        if fresh:
            await session.execute_many(self.sql_insert_many, fresh)
        return {row[id_column] for row in fresh}

    async def _insert_in(self, session: Any, rows: Sequence[tuple[Any, ...]]) -> set[str]:
        """Insert in the caller's transaction: lock first (a duplicate-key error followed by a locking read would
        deadlock concurrent inserts of one key), a race lost in between undone to a savepoint and tried again. A
        deadlock ended the caller's transaction: it propagates."""
        inserted: set[str] = set()
        for chunk in chunked(rows, _ROWS_PER_CHUNK):
            for attempt in range(_ATTEMPTS):
                await session.execute_script(f"SAVEPOINT {_SAVEPOINT}")
                try:
                    fresh = await self._insert_free(session, chunk)
                except UniqueViolationError:
                    await session.execute_script(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
                    if attempt == _ATTEMPTS - 1:
                        raise
                    continue
                await session.execute_script(f"RELEASE SAVEPOINT {_SAVEPOINT}")
                inserted |= fresh
                break
        return inserted

    # -- claiming and running ----------------------------------------------------------------------

    async def _start(
        self, session: Any, rows: list[dict[str, Any]], owner: str, now: datetime, lease_expires_at: datetime
    ) -> list[TaskRecord]:
        condition, params = self.in_list("id", "id", [row["id"] for row in rows])
        params.update(owner=owner, now=self.codec.time(now), lease_expires_at=self.codec.time(lease_expires_at))
        await session.execute(f"UPDATE {self.names.tasks} {self.claim_set()} WHERE {condition}", params)
        return [
            claimed_record(self.decode(row), owner=owner, now=now, lease_expires_at=lease_expires_at) for row in rows
        ]

    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_expires_at: datetime
    ) -> list[TaskRecord]:
        """``SELECT … FOR UPDATE SKIP LOCKED`` then ``UPDATE … WHERE id IN (…)``, in one transaction."""
        condition, params = self.in_list("queue", "queue", queues)
        params.update(now=self.codec.time(now), limit=limit)
        sql = (
            f"SELECT {SELECT_COLUMNS} FROM {self.names.tasks} WHERE {condition} AND status = 'pending' "
            f"AND scheduled_at <= :now AND (expires_at IS NULL OR expires_at > :now) AND {self.unpaused} "
            "ORDER BY priority DESC, scheduled_at, id LIMIT :limit FOR UPDATE SKIP LOCKED"
        )

        async def attempt() -> list[TaskRecord]:
            async with self.transaction() as session:
                rows = await session.select(sql, params)
                return await self._start(session, rows, owner, now, lease_expires_at) if rows else []

        return await self.retrying(attempt)

    async def claim_record(
        self, record_id: str, *, owner: str, now: datetime, lease_expires_at: datetime
    ) -> TaskRecord | None:
        """Lock the pending row, then start its attempt."""

        async def attempt() -> TaskRecord | None:
            async with self.transaction() as session:
                rows = await session.select(self.sql_claim_record, {"id": record_id})
                return (await self._start(session, rows, owner, now, lease_expires_at))[0] if rows else None

        return await self.retrying(attempt)

    async def renew(self, leases: Sequence[Lease], *, lease_expires_at: datetime) -> dict[str, bool]:
        """The guarded UPDATE, then a read of the fences: a renewal to the same expiry changes no row."""
        held: dict[str, bool] = {}
        for start in range(0, len(leases), 200):
            batch = leases[start : start + 200]
            sql, params = self.renew_statement(batch, lease_expires_at)
            await self.db.execute(sql, params)
            condition, id_params = self.in_list("id", "id", [lease.record_id for lease in batch])
            rows = await self.db.select(
                f"SELECT id, owner, token, status, cancel_requested FROM {self.names.tasks} WHERE {condition}",
                id_params,
            )
            fences = {(lease.record_id, lease.owner, lease.token) for lease in batch}
            for row in rows:
                if row["status"] == "running" and (row["id"], row["owner"], row["token"]) in fences:
                    held[row["id"]] = bool(row["cancel_requested"])
        return held

    async def transfer(self, lease: Lease, *, owner: str, lease_expires_at: datetime) -> TaskRecord | None:
        """The guarded UPDATE (it always changes the token, so its row count decides), then a read; one transaction."""
        sql, params = self.transfer_statement(lease, owner, lease_expires_at)

        async def attempt() -> TaskRecord | None:
            async with self.transaction() as session:
                result = await session.execute(sql, params)
                if result.rows_affected != 1:
                    return None
                rows = await session.select(self.sql_get, {"id": lease.record_id})
                return self.decode(rows[0])

        return await self.retrying(attempt)

    def finish(
        self, lease: Lease, outcome: Outcome, *, now: datetime, claimed: TaskRecord | None = None
    ) -> Awaitable[TaskRecord | None]:
        """The guarded UPDATE (it always changes the status, so its row count decides), then a read unless
        ``claimed`` gives the finished record (terminal outcomes only: a pending one may end cancelled); one
        transaction."""
        sql, params = self.finish_statement(lease, outcome, now)
        if as_status(outcome.status) is TaskStatus.PENDING:
            claimed = None

        async def attempt() -> TaskRecord | None:
            async with self.transaction() as session:
                result = await session.execute(sql, params)
                if result.rows_affected != 1:
                    return None
                if claimed is not None:
                    return finished_record(claimed, outcome, now)
                rows = await session.select(self.sql_get, {"id": lease.record_id})
                return self.decode(rows[0])

        return self.retrying(attempt)

    # -- control -----------------------------------------------------------------------------------

    async def cancel(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Cancel if pending, else flag if running; then read the record."""
        changed = await self.db.execute(self.sql_cancel_pending, {"id": record_id, "now": self.codec.time(now)})
        if not changed:
            await self.db.execute(self.sql_cancel_running, {"id": record_id})
        return await self.get(record_id)

    async def requeue(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Guarded UPDATE, then a read.

        Raises:
            DuplicateTaskError: Another active record holds the record's key.
        """
        try:
            await self.db.execute(self.sql_requeue, {"id": record_id, "now": self.codec.time(now)})
        except UniqueViolationError as error:
            msg = f"cannot requeue {record_id}: another active record holds its key"
            raise DuplicateTaskError(msg) from error
        return await self.get(record_id)

    async def expire(self, *, now: datetime, limit: int) -> int:
        """Lock a bounded batch of expired pending rows (skipping locked ones) and expire them."""
        db_now = self.codec.time(now)

        async def attempt() -> int:
            async with self.transaction() as session:
                rows = await session.select(self.sql_expire_select, {"now": db_now, "limit": limit})
                if not rows:
                    return 0
                condition, params = self.in_list("id", "id", [row["id"] for row in rows])
                params["now"] = db_now
                result = await session.execute(
                    f"UPDATE {self.names.tasks} SET status = 'expired', finished_at = :now, active_key = NULL "
                    f"WHERE {condition} AND status = 'pending'",
                    params,
                )
                return int(result.rows_affected)

        return await self.retrying(attempt)

    async def prune(self, *, finished_before: datetime, limit: int) -> int:
        """``DELETE … ORDER BY finished_at LIMIT n`` (single-table DELETE takes a LIMIT on MySQL)."""
        return await self.db.execute(self.sql_prune, {"before": self.codec.time(finished_before), "limit": limit})

    # -- workers and locks -------------------------------------------------------------------------

    async def upsert_worker(self, worker_id: str, info: str, expires_at: datetime) -> None:
        """``REPLACE INTO`` (no ``VALUES()`` function, which MySQL 8.0.20+ deprecates)."""
        await self.db.execute(
            self.sql_worker_upsert, {"id": worker_id, "info": info, "expires_at": self.codec.time(expires_at)}
        )

    async def acquire_lock(self, name: str, *, owner: str, expires_at: datetime, now: datetime) -> bool:
        """Create the lock row if missing, take it if ours or expired, then read who holds it."""
        params = {"name": name, "owner": owner, "expires_at": self.codec.time(expires_at)}
        await self.db.execute(self.sql_lock_insert, params)
        await self.db.execute(self.sql_lock_take, {**params, "now": self.codec.time(now)})
        rows = await self.db.select(self.sql_lock_owner, {"name": name})
        return bool(rows) and rows[0]["owner"] == owner

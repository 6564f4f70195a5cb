"""MySQL 8.0.1+ and MariaDB 10.6+ (asyncmy): short READ COMMITTED transactions instead of ``UPDATE … RETURNING``.

Neither server can ``LIMIT`` inside an ``IN (subquery)`` and neither has ``UPDATE … RETURNING``, so a claim is
``SELECT <rows> … FOR UPDATE SKIP LOCKED`` then ``UPDATE … WHERE id IN (…)`` in one transaction, the claimed
records computed from the locked rows; a guarded single-row change is its ``UPDATE`` then a read of the row, in
one transaction. SQLAlchemy's MySQL drivers report *matched* rows (``CLIENT_FOUND_ROWS``), so a row count tells
whether a guard held. READ COMMITTED avoids the gap locks REPEATABLE READ would take on the scanned index ranges,
which would block concurrent enqueues until a claim commits.

Inside a caller's transaction (whatever its isolation level) the enqueue reads with locking reads, which see the
latest committed rows rather than the transaction's snapshot, and a conflicting insert is undone to a savepoint.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import bindparam, null, or_, select, text, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from litestar_queues.backend import claimed_record, finished_record
from litestar_queues.backends.advanced_alchemy.stores.base import Inserter, Store, status_is
from litestar_queues.backends.advanced_alchemy.tables import QueueTables
from litestar_queues.errors import ConfigurationError
from litestar_queues.records import Lease, Outcome, TaskRecord, TaskStatus, as_status
from litestar_queues.sql.rows import MySQLValueCodec

__all__ = ("MySQLStore",)

_ATTEMPTS = 8
"""Tries of an insert that lost a duplicate-key race."""
_DEADLOCK = frozenset({1213, 1205})
"""ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT."""
_DUPLICATE = 1062
_VERSION_PATTERN = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def _code(error: DBAPIError) -> int | None:
    args = getattr(error.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_duplicate(error: IntegrityError) -> bool:
    """Whether ``error`` is a duplicate key (the id or the active key was taken)."""
    return _code(error) == _DUPLICATE


class MySQLInserter(Inserter):
    """Lock the rows holding the records' ids and keys (``SELECT … FOR UPDATE``, which also waits for an
    uncommitted holder), then insert the others; a race lost to an insert in between is undone to a savepoint and
    tried again. Locking first keeps InnoDB from deadlocking concurrent inserts of one key, which a duplicate-key
    error followed by a locking read would (the failed insert keeps a shared lock on the holder's row)."""

    __slots__ = ()

    store: MySQLStore

    async def insert_tasks(self, records: Sequence[TaskRecord]) -> set[str]:
        """Insert, skipping records whose id or key is taken."""
        rows = [self.store.encode(record) for record in records]
        for attempt in range(_ATTEMPTS):
            savepoint = await self.connection.begin_nested()
            try:
                inserted = await self._insert_free(rows)
            except DBAPIError as error:
                # A deadlock ended the whole transaction (no savepoint left): it propagates, to be retried as a
                # whole, or to the caller whose transaction it was.
                if _code(error) not in _DEADLOCK:
                    await savepoint.rollback()
                if not (isinstance(error, IntegrityError) and is_duplicate(error)) or attempt == _ATTEMPTS - 1:
                    raise
            else:
                await savepoint.commit()
                return inserted
        return set()  # pragma: no cover - the loop returns or raises

    async def _insert_free(self, rows: list[dict[str, Any]]) -> set[str]:
        t = self.store.tables.tasks
        ids = [row["id"] for row in rows]
        keys = [row["active_key"] for row in rows if row["active_key"] is not None]
        holders = select(t.c.id, t.c.active_key).where(
            or_(t.c.id.in_(ids), t.c.active_key.in_(keys)) if keys else t.c.id.in_(ids)
        )
        taken = (await self.connection.execute(holders.with_for_update())).all()
        taken_ids = {row[0] for row in taken}
        taken_keys = {row[1] for row in taken if row[1] is not None}
        fresh = [row for row in rows if row["id"] not in taken_ids and row["active_key"] not in taken_keys]
        if fresh:
            await self.connection.execute(self.store.sql_insert, fresh)
        return {row["id"] for row in fresh}


class MySQLStore(Store):
    """MySQL 8.0.1+ / MariaDB 10.6+ (``SKIP LOCKED``), InnoDB."""

    family: ClassVar[str] = "mysql"

    def __init__(self, engine: AsyncEngine, tables: QueueTables) -> None:
        """Build the statements."""
        super().__init__(engine, tables, MySQLValueCodec())
        t = tables.tasks
        # Locking reads: they see the latest committed rows, also inside a REPEATABLE READ transaction of the caller.
        self.sql_by_ids = self.sql_by_ids.with_for_update(read=True)
        self.sql_by_active_keys = self.sql_by_active_keys.with_for_update(read=True)
        self.sql_insert = t.insert()
        self.sql_claim = (
            self.where_in(select(*self.columns).where(self.due, self.unpaused), t.c.queue)
            .order_by(*self.due_order)
            .limit(bindparam("limit"))
            .with_for_update(skip_locked=True)
        )
        self.sql_start = self.where_in(update(t), t.c.id).values(self.claim_values)
        self.sql_renewed = self.where_in(select(t.c.id, t.c.owner, t.c.token, t.c.status, t.c.cancel_requested), t.c.id)
        self.sql_expiring = (
            select(t.c.id)
            .where(status_is(t.c.status, "pending"), t.c.expires_at <= bindparam("now"))
            .order_by(t.c.expires_at)
            .limit(bindparam("limit"))
            .with_for_update(skip_locked=True)
        )
        self.sql_expire = self.where_in(
            update(t).where(status_is(t.c.status, "pending")),
            t.c.id,
        ).values(status="expired", finished_at=bindparam("now"), active_key=null())
        self.sql_pruning = (
            select(t.c.id)
            .where(self.terminal_before())
            .order_by(t.c.finished_at)
            .limit(bindparam("limit"))
            .with_for_update(skip_locked=True)
        )
        self.sql_prune = self.where_in(t.delete(), t.c.id)
        # IGNORE turns only the duplicate key into "0 rows" here: queue names are checked by the core (at most 255
        # characters, no NUL), so no other error is left to downgrade.
        self.sql_pause = (
            mysql_insert(tables.pauses)
            .prefix_with("IGNORE")
            .values(queue=bindparam("queue_name"), paused_at=bindparam("paused_at"))
        )
        workers = tables.workers
        worker = mysql_insert(workers).values(
            id=bindparam("rid"), info=bindparam("info"), expires_at=bindparam("expires_at")
        )
        self.sql_worker_upsert = worker.on_duplicate_key_update(
            info=worker.inserted.info, expires_at=worker.inserted.expires_at
        )
        locks = tables.locks
        lock = mysql_insert(locks).values(
            name=bindparam("lock_name"), owner=bindparam("lease_owner"), expires_at=bindparam("lock_until")
        )
        self.sql_lock_insert = lock.on_duplicate_key_update(name=locks.c.name)
        self.sql_lock_take = (
            update(locks)
            .where(
                locks.c.name == bindparam("lock_name"),
                or_(locks.c.owner == bindparam("lease_owner"), locks.c.expires_at <= bindparam("now")),
            )
            .values(owner=bindparam("lease_owner"), expires_at=bindparam("lock_until"))
        )
        self.sql_lock_owner = select(locks.c.owner).where(locks.c.name == bindparam("lock_name"))

    # -- helpers -----------------------------------------------------------------------------------

    async def check_server(self) -> None:
        """Require ``SKIP LOCKED``: MySQL 8.0.1+ or MariaDB 10.6+.

        Raises:
            ConfigurationError: The server is older.
        """
        version = str((await self.rows(text("SELECT VERSION() AS version")))[0]["version"])
        match = _VERSION_PATTERN.search(version)
        numbers = tuple(int(part) for part in match.groups()) if match else (0, 0, 0)
        required = (10, 6, 0) if "mariadb" in version.lower() else (8, 0, 1)
        if numbers < required:
            msg = f"the queue needs MySQL 8.0.1+ or MariaDB 10.6+ (FOR UPDATE SKIP LOCKED); the server is {version}"
            raise ConfigurationError(msg)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A single statement runs in a transaction of its own (no connection switched to autocommit and back)."""
        async with self.engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A READ COMMITTED transaction, committed when the block ends (rolled back if it raises)."""
        async with self.engine.connect() as connection:
            # Applies to the next transaction only: the connection goes back to the pool as it came.
            await connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            try:
                yield connection
            except BaseException:
                await connection.rollback()
                raise
            await connection.commit()

    def is_deadlock(self, error: Exception) -> bool:
        """InnoDB's deadlock victim, or a lock wait that timed out (the statement's transaction is rolled back)."""
        return isinstance(error, DBAPIError) and _code(error) in _DEADLOCK

    async def update_returning(
        self, statement: Any, params: dict[str, Any], *, notify: tuple[str, str] | None = None
    ) -> list[TaskRecord]:
        """The guarded single-row UPDATE, then a read of its row if the guard held; one transaction."""
        del notify

        async def attempt() -> list[TaskRecord]:
            async with self.transaction() as connection:
                if (await connection.execute(statement, params)).rowcount < 1:
                    return []
                row = (await connection.execute(self.sql_get, {"rid": params["rid"]})).mappings().one()
                return [self.decode(row)]

        return await self.retrying(attempt)

    # -- writing work ------------------------------------------------------------------------------

    def inserter(self, connection: AsyncConnection, *, own: bool = False) -> Inserter:
        """Insert on ``connection`` (also inside the caller's transaction: conflicts are undone to savepoints)."""
        return MySQLInserter(self, connection, own=own)

    def enqueue_connection(self) -> Any:
        """An enqueue of the backend's own runs in one READ COMMITTED transaction."""
        return self.transaction()

    # -- claiming and running ----------------------------------------------------------------------

    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_expires_at: datetime
    ) -> list[TaskRecord]:
        """``SELECT … FOR UPDATE SKIP LOCKED`` then ``UPDATE … WHERE id IN (…)``, in one transaction."""
        params = self.claim_params(owner, now, lease_expires_at)

        async def attempt() -> list[TaskRecord]:
            async with self.transaction() as connection:
                rows = list(
                    (
                        await connection.execute(
                            self.sql_claim, {"values": list(queues), "now": params["now"], "limit": limit}
                        )
                    ).mappings()
                )
                if not rows:
                    return []
                await connection.execute(self.sql_start, {**params, "values": [row["id"] for row in rows]})
                return [
                    claimed_record(self.decode(row), owner=owner, now=now, lease_expires_at=lease_expires_at)
                    for row in rows
                ]

        return await self.retrying(attempt)

    async def renew(self, leases: Sequence[Lease], *, lease_expires_at: datetime) -> dict[str, bool]:
        """The guarded UPDATE, then a read of the fences (the row count cannot tell which leases matched)."""
        held: dict[str, bool] = {}
        for start in range(0, len(leases), 200):
            batch = leases[start : start + 200]
            statement, params = self.renew_statement(batch)
            params["lease_until"] = self.time(lease_expires_at)
            async with self.connect() as connection:
                await connection.execute(statement, params)
                result = await connection.execute(self.sql_renewed, {"values": [lease.record_id for lease in batch]})
                rows = list(result.mappings())
            fences = {(lease.record_id, lease.owner, lease.token) for lease in batch}
            for row in rows:
                if row["status"] == "running" and (row["id"], row["owner"], row["token"]) in fences:
                    held[row["id"]] = bool(row["cancel_requested"])
        return held

    async def finish_alone(
        self, lease: Lease, outcome: Outcome, now: datetime, claimed: TaskRecord | None
    ) -> TaskRecord | None:
        """The guarded UPDATE (its matched-row count decides), then a read unless ``claimed`` gives the record
        (terminal outcomes only: a retry may end cancelled)."""
        statement, params = self.finish_statement(lease, outcome, now)
        known = claimed if as_status(outcome.status) is not TaskStatus.PENDING else None

        async def attempt() -> TaskRecord | None:
            async with self.transaction() as connection:
                if (await connection.execute(statement, params)).rowcount != 1:
                    return None
                if known is not None:
                    return finished_record(known, outcome, now)
                row = (await connection.execute(self.sql_get, {"rid": lease.record_id})).mappings().one()
                return self.decode(row)

        return await self.retrying(attempt)

    # -- control -----------------------------------------------------------------------------------

    async def _locked_batch(self, select_ids: Any, change: Any, params: dict[str, Any]) -> int:
        async def attempt() -> int:
            async with self.transaction() as connection:
                ids = [row[0] for row in await connection.execute(select_ids, params)]
                if not ids:
                    return 0
                return int((await connection.execute(change, {**params, "values": ids})).rowcount)

        return await self.retrying(attempt)

    async def expire(self, *, now: datetime, limit: int) -> int:
        """Lock a bounded batch of expired pending rows (skipping locked ones) and expire them."""
        return await self._locked_batch(self.sql_expiring, self.sql_expire, {"now": self.time(now), "limit": limit})

    async def prune(self, *, finished_before: datetime, limit: int) -> int:
        """Lock a bounded batch of the oldest finished rows (skipping locked ones) and delete them."""
        params = {"before": self.time(finished_before), "limit": limit}
        return await self._locked_batch(self.sql_pruning, self.sql_prune, params)

    # -- pausing queues ----------------------------------------------------------------------------

    async def pause_queue(self, queue: str, *, now: datetime) -> bool:
        """``INSERT IGNORE`` (no ``RETURNING``): its row count says whether it inserted."""
        return await self.execute(self.sql_pause, {"queue_name": queue, "paused_at": self.time(now)}) > 0

    # -- workers and locks -------------------------------------------------------------------------

    async def upsert_worker(self, worker_id: str, info: str, expires_at: datetime) -> None:
        """``INSERT … ON DUPLICATE KEY UPDATE``."""
        params = {"rid": worker_id, "info": info, "expires_at": self.time(expires_at)}
        await self.execute(self.sql_worker_upsert, params)

    async def acquire_lock(self, name: str, *, owner: str, expires_at: datetime, now: datetime) -> bool:
        """Create the lock row if missing, take it if ours or expired, then read who holds it; one transaction."""
        params = {"lock_name": name, "lease_owner": owner, "lock_until": self.time(expires_at), "now": self.time(now)}

        async def attempt() -> bool:
            async with self.transaction() as connection:
                await connection.execute(self.sql_lock_insert, params)
                await connection.execute(self.sql_lock_take, params)
                holder = (await connection.execute(self.sql_lock_owner, params)).scalar_one_or_none()
                return bool(holder == owner)

        return await self.retrying(attempt)

"""SQLite (aiosqlite): every transition is one ``UPDATE … RETURNING`` statement.

A writing statement takes SQLite's database write lock before it reads anything, so a single
``UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING …`` cannot hand a row to two claimers, even
from different processes sharing the file. (A SELECT followed by an UPDATE could: the read happens
outside the write lock.) Lock waits are bounded by ``busy_timeout``.

On a file, the statements of one backend run on one connection (see ``native``), and the terminal finishes of
concurrent attempts share one statement (the fences joined from one JSON array): one write transaction and one
commit for a batch instead of one per attempt, the cost that bounds a SQLite drain. A caller's finish still
returns only once its row is committed.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, ClassVar

from litestar_queues.backends.sqlspec.database import Database
from litestar_queues.backends.sqlspec.dialects.base import SELECT_COLUMNS, TERMINAL_SQL, Dialect, chunked
from litestar_queues.backends.sqlspec.names import Family, TableNames
from litestar_queues.errors import ConfigurationError
from litestar_queues.records import Lease, Outcome, TaskRecord, TaskStatus, as_status
from litestar_queues.sql.batching import Coalescer
from litestar_queues.sql.finishing import Ending, ending, finished_records
from litestar_queues.sql.rows import TASK_COLUMNS, SQLiteValueCodec, check_sqlite_version, encode_json, encode_task

__all__ = ("SQLiteDialect", "check_sqlite_location", "memory_database")

try:
    import fcntl
except ImportError:  # Windows: no flock; concurrent starters rely on the retries alone
    fcntl = None  # type: ignore[assignment]


def check_sqlite_location(config: Any, where: str) -> None:
    """Raise ``ConfigurationError`` if the folder of the database file does not exist (SQLite would not create it).

    A URL ``sqlite:///jobs/x.db`` names a path relative to the working directory; ``sqlite:////jobs/x.db`` an
    absolute one, and the message says which one it took.
    """
    database = str(getattr(config, "connection_config", {}).get("database", ":memory:"))
    if database == ":memory:" or database.startswith("file:"):
        return
    folder = os.path.dirname(os.path.abspath(database))
    if not os.path.isdir(folder):
        hint = (
            ""
            if os.path.isabs(database)
            else f" ({database!r} is relative to the working directory; for the absolute path "
            f"/{database} use four slashes: sqlite:////{database})"
        )
        raise ConfigurationError(f"{where}: the folder {folder} of the database file does not exist{hint}")


def memory_database(config: Any) -> bool:
    """Whether the SQLSpec configuration ``config`` names an in-memory database rather than a file."""
    database = str(getattr(config, "connection_config", {}).get("database", ":memory:"))
    return database == ":memory:" or database.startswith("file::memory:") or "mode=memory" in database


def _max_bind_parameters() -> int:
    # SQLITE_MAX_VARIABLE_NUMBER defaults to 32766 since 3.32 and to 999 before.
    return 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


class SQLiteDialect(Dialect):
    """SQLite 3.35+ on a file shared by any number of processes (WAL)."""

    family: ClassVar[Family] = "sqlite"
    migrates_inside_guard: ClassVar[bool] = False

    def __init__(self, db: Database, names: TableNames) -> None:
        """Build the statements."""
        super().__init__(db, names, SQLiteValueCodec())
        tasks = names.tasks
        self._rows_per_insert = _max_bind_parameters() // len(TASK_COLUMNS)
        row = f"({', '.join('?' for _ in TASK_COLUMNS)})"
        self._insert_head = f"INSERT INTO {tasks} ({', '.join(TASK_COLUMNS)}) VALUES "
        self._insert_row = row
        self.sql_expire = (
            f"UPDATE {tasks} SET status = 'expired', finished_at = :now, active_key = NULL WHERE id IN "
            f"(SELECT id FROM {tasks} WHERE status = 'pending' AND expires_at <= :now ORDER BY expires_at "
            "LIMIT :limit)"
        )
        self.sql_prune = (
            f"DELETE FROM {tasks} WHERE id IN (SELECT id FROM {tasks} WHERE status IN {TERMINAL_SQL} "
            "AND finished_at < :before ORDER BY finished_at LIMIT :limit)"
        )
        # The fence (id, owner, token) and the values of each ending, read from one JSON array of arrays.
        fields = ("id", "owner", "token", "status", "moment", "result", "error")
        batch = ", ".join(f"json_extract(value, '$[{position}]') AS {name}" for position, name in enumerate(fields))
        self.sql_finish_many = (
            f"UPDATE {tasks} SET status = b.status, finished_at = b.moment, result = b.result, error = b.error, "
            "active_key = NULL, owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE "
            f"FROM (SELECT {batch} FROM json_each(:endings)) AS b WHERE {tasks}.id = b.id "
            f"AND {tasks}.status = 'running' AND {tasks}.owner = b.owner AND {tasks}.token = b.token RETURNING id"
        )
        self._finishes: Coalescer[Ending, TaskRecord | None] = Coalescer(
            self._finish_many, key=lambda item: item.record_id
        )

    async def check_server(self) -> None:
        """Require SQLite 3.35+ (``RETURNING``).

        Raises:
            ConfigurationError: The Python build links an older SQLite library.
        """
        check_sqlite_version("SQLSpec backend")

    @asynccontextmanager
    async def migration_guard(self, session: Any) -> AsyncIterator[bool | None]:
        """Migrate inside one ``BEGIN IMMEDIATE`` transaction: other processes wait for the write lock."""
        await self.relock(session)
        try:
            yield False
        except BaseException:
            await session.rollback()
            raise
        await session.commit()

    @asynccontextmanager
    async def startup_lock(self) -> AsyncIterator[None]:
        """An exclusive ``flock`` on ``<database>.migrate-lock`` while this process checks and upgrades the schema.

        Processes starting at once on a new file would otherwise race: their first connections switch the
        file to WAL while others already read it, and creating SQLSpec's version table outside the
        ``BEGIN IMMEDIATE`` guard then meets "database is locked" instead of a wait. In-memory databases (one
        process) and systems without ``fcntl`` take no lock.
        """
        if fcntl is None or memory_database(self.db.config):
            yield
            return
        database = str(self.db.config.connection_config["database"])
        descriptor = os.open(f"{database}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.02)
            yield
        finally:
            os.close(descriptor)  # releases the lock

    async def relock(self, session: Any) -> None:
        """``BEGIN IMMEDIATE``: wait for, then hold, the database write lock."""
        await (await session.connection.execute("BEGIN IMMEDIATE")).close()

    async def insert_tasks(self, records: Sequence[TaskRecord], *, session: Any = None) -> set[str]:
        """Multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING id``, chunked under the bind-parameter limit (in
        the caller's ``session`` when given)."""
        inserted: set[str] = set()
        for chunk in chunked([encode_task(record, self.codec) for record in records], self._rows_per_insert):
            sql = f"{self._insert_head}{', '.join(self._insert_row for _ in chunk)} ON CONFLICT DO NOTHING RETURNING id"
            values = [value for row in chunk for value in row]
            if session is not None:
                inserted |= await _insert_rows(session, sql, values)
            elif self.db.shared:
                inserted |= {row["id"] for row in await self.db.select(sql, values)}
            else:
                async with self.db.session() as own:
                    inserted |= await _insert_rows(own, sql, values)
        return inserted

    async def select_where_in(self, column: str, values: Sequence[str], *, session: Any = None) -> list[dict[str, Any]]:
        """Bind the list as one JSON array (``json_each``): one statement text, parsed once, whatever the length."""
        sql = (
            f"SELECT {SELECT_COLUMNS} FROM {self.names.tasks} WHERE {column} IN (SELECT value FROM json_each(:members))"
        )
        return await self.select_on(session, sql, {"members": encode_json(list(values))})

    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_expires_at: datetime
    ) -> list[TaskRecord]:
        """One ``UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING …`` under SQLite's write lock."""
        condition, params = self.in_list("queue", "queue", queues)
        tasks = self.names.tasks
        sql = (
            f"UPDATE {tasks} {self.claim_set()} WHERE id IN (SELECT id FROM {tasks} WHERE status = 'pending' "
            f"AND {condition} AND scheduled_at <= :now AND (expires_at IS NULL OR expires_at > :now) "
            f"AND {self.unpaused} ORDER BY priority DESC, scheduled_at, id LIMIT :limit) RETURNING {SELECT_COLUMNS}"
        )
        codec = self.codec
        params.update(owner=owner, now=codec.time(now), lease_expires_at=codec.time(lease_expires_at), limit=limit)
        return [self.decode(row) for row in await self.db.select(sql, params)]

    def finish(
        self, lease: Lease, outcome: Outcome, *, now: datetime, claimed: TaskRecord | None = None
    ) -> Awaitable[TaskRecord | None]:
        """Terminal outcomes of concurrent callers share one statement (see ``batching``); retries run alone.

        The shared statement returns only ids: a caller's ``claimed`` record gives its finished record, the finished
        records of callers without one are read back.
        """
        if as_status(outcome.status) is TaskStatus.PENDING or outcome.only_if_lease_expired:
            return super().finish(lease, outcome, now=now)
        return self._finishes.submit(ending(lease, outcome, now, claimed))

    async def _finish_many(self, endings: Sequence[Ending]) -> list[TaskRecord | None]:
        time = self.codec.time
        batch = encode_json([(*item[:4], time(item.moment), *item[5:7]) for item in endings])
        done = {row["id"] for row in await self.db.select(self.sql_finish_many, {"endings": batch})}
        return await finished_records(endings, done, self.fetch_by_ids)

    async def expire(self, *, now: datetime, limit: int) -> int:
        """Expire a bounded batch in one statement."""
        return await self.db.execute(self.sql_expire, {"now": self.codec.time(now), "limit": limit})

    async def prune(self, *, finished_before: datetime, limit: int) -> int:
        """Delete a bounded batch of the oldest finished records in one statement."""
        return await self.db.execute(self.sql_prune, {"before": self.codec.time(finished_before), "limit": limit})

    async def upsert_worker(self, worker_id: str, info: str, expires_at: datetime) -> None:
        """``INSERT … ON CONFLICT DO UPDATE``."""
        await self.upsert_worker_on_conflict(worker_id, info, expires_at)

    async def acquire_lock(self, name: str, *, owner: str, expires_at: datetime, now: datetime) -> bool:
        """One conditional upsert."""
        return await self.acquire_lock_on_conflict(name, owner=owner, expires_at=expires_at, now=now)


async def _insert_rows(session: Any, sql: str, values: list[Any]) -> set[str]:
    """Run an ``INSERT … RETURNING id`` straight on the aiosqlite connection of a SQLSpec session: SQLSpec would
    parse the statement (seconds for thousands of placeholders), and without parsing it does not see that
    ``INSERT … RETURNING`` returns rows."""
    cursor = await session.connection.execute(sql, values)
    try:
        returned: list[Any] = list(await cursor.fetchall())
        return {row["id"] if isinstance(row, dict) else row[0] for row in returned}
    finally:
        await cursor.close()

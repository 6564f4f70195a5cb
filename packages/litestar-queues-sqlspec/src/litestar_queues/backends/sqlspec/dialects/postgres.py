"""PostgreSQL (asyncpg, psycopg): single-statement claims with ``FOR UPDATE SKIP LOCKED`` and NOTIFY wakeups.

Lists are bound as one array parameter (``= ANY(…)``, ``unnest(…)``) and the rows of a bulk enqueue
as one JSON text (``json_to_recordset(…)``), so statement texts never depend on a list's length and
the drivers' prepared-statement caches stay warm. Notifications are
sent by the statements that make work available or finish it (``pg_notify`` on each returned row;
PostgreSQL folds identical notifications of one transaction into one) and are delivered at commit.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from operator import itemgetter
from typing import Any, ClassVar

from litestar_queues.backends.sqlspec.database import Database
from litestar_queues.backends.sqlspec.dialects.base import SELECT_COLUMNS, TERMINAL_SQL, Dialect
from litestar_queues.backends.sqlspec.names import Family, TableNames
from litestar_queues.records import Lease, Outcome, TaskRecord, TaskStatus, as_status
from litestar_queues.sql.batching import Coalescer
from litestar_queues.sql.finishing import Ending, ending, ending_arrays, finished_records, lease_arrays
from litestar_queues.sql.rows import (
    DEFAULTED_COLUMNS,
    PER_ROW_COLUMNS,
    SHARED_COLUMNS,
    TASK_COLUMNS,
    PostgresValueCodec,
    encode_json_rows,
    encode_shared_rows,
    encode_task,
)

__all__ = ("PostgresDialect",)

_COLUMN_TYPES: dict[str, str] = {
    "id": "varchar",
    "task_name": "varchar",
    "queue": "varchar",
    "args": "text",
    "kwargs": "text",
    "priority": "integer",
    "status": "varchar",
    "dedup_key": "varchar",
    "active_key": "varchar",
    "attempts": "integer",
    "max_retries": "integer",
    "retry_delay": "double precision",
    "timeout": "double precision",
    "created_at": "timestamptz",
    "scheduled_at": "timestamptz",
    "expires_at": "timestamptz",
    "started_at": "timestamptz",
    "finished_at": "timestamptz",
    "result": "text",
    "error": "text",
    "execution_backend": "varchar",
    "execution_profile": "varchar",
    "metadata": "text",
    "owner": "varchar",
    "token": "bigint",
    "lease_expires_at": "timestamptz",
    "cancel_requested": "boolean",
    "progress": "text",
}
_ROWS_PER_INSERT = 5000
_PARALLEL_INSERTS = 2
_MIN_ROWS_PER_PARALLEL_INSERT = 1000
"""A bulk enqueue of more than 1,000 records runs as up to two statements at once, each on its own pooled
connection: the server inserts them in parallel. (Four statements of 250 rows lost to one of 2,000 on a fresh
system: each more connection is opened and prepares the insert inside the call.)"""
_IDS_PER_NOTIFICATION = 20
"""Finished ids sent per notification: 20 ids of at most 380 bytes stay under PostgreSQL's 8000-byte payload
(longer ids, up to 255 four-byte characters, go alone)."""


class PostgresDialect(Dialect):
    """PostgreSQL 12+."""

    family: ClassVar[Family] = "postgres"

    def __init__(self, db: Database, names: TableNames, *, notify: bool) -> None:
        """Build the statements; with ``notify``, work-making and finishing statements also ``pg_notify``."""
        super().__init__(db, names, PostgresValueCodec())
        self.notify = notify
        tasks = names.tasks
        columns = ", ".join(TASK_COLUMNS)

        def typed(names: Sequence[str]) -> str:
            return ", ".join(f"{column} {_COLUMN_TYPES[column]}" for column in names)

        # The JSON travels as a text parameter: a json one would go through the driver's JSON codec, if any. (The
        # join is `JOIN … ON TRUE`: SQLSpec's parser, which statements in a caller's session go through, rejects
        # `CROSS JOIN` of two column-definition lists.)
        insert = (
            f"INSERT INTO {tasks} ({columns}) SELECT {columns} FROM json_to_recordset(CAST(CAST(:rows AS text) AS "
            f"json)) AS r({typed(TASK_COLUMNS)}) ON CONFLICT DO NOTHING RETURNING id, queue"
        )
        picked = ", ".join(
            f"coalesce(r.{column}, s.{column})"
            if column in DEFAULTED_COLUMNS
            else f"r.{column}"
            if column in PER_ROW_COLUMNS
            else f"s.{column}"
            for column in TASK_COLUMNS
        )
        shared_insert = (
            f"INSERT INTO {tasks} ({columns}) SELECT {picked} FROM json_to_record(CAST(CAST(:shared AS text) AS "
            f"json)) AS s({typed(SHARED_COLUMNS)}) JOIN json_to_recordset(CAST(CAST(:rows AS text) AS json)) "
            f"AS r({typed(PER_ROW_COLUMNS)}) ON TRUE ON CONFLICT DO NOTHING RETURNING id, queue"
        )
        single = (
            f"INSERT INTO {tasks} ({columns}) VALUES ({', '.join(f':{column}' for column in TASK_COLUMNS)}) "
            "ON CONFLICT DO NOTHING RETURNING id, queue"
        )
        # New work of a paused queue wakes nobody: no worker could claim it.
        self.sql_insert_one = (
            f"WITH ins AS ({single}) SELECT id FROM ins "
            "LEFT JOIN LATERAL (SELECT pg_notify(:notify_channel, ins.queue) "
            f"WHERE NOT EXISTS (SELECT 1 FROM {names.pauses} AS p WHERE p.queue = ins.queue)) AS n ON TRUE"
            if notify
            else single
        )
        # The inserted ids come back as one array in one row, not one row each: a driver builds one object per
        # row it receives, and thousands of them per call cost the client more than the array's strings.
        # Joining the one-row count makes the notifying CTE run, once.
        self.sql_insert = self._returning_ids(insert, notify)
        self.sql_insert_shared = self._returning_ids(shared_insert, notify)
        due = "status = 'pending' AND scheduled_at <= :now AND (expires_at IS NULL OR expires_at > :now)"
        order = "ORDER BY priority DESC, scheduled_at, id"
        returning = ", ".join(f"t.{column}" for column in SELECT_COLUMNS.split(", "))
        # The rows to change are picked in a MATERIALIZED CTE, evaluated exactly once. The shorter
        # `UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` lets the planner re-run the
        # subquery per outer row in some plans (a nested-loop semi-join, likelier with the generic plans
        # of prepared statements), and a re-run with SKIP LOCKED can pick further rows: more than n.
        # A claim commits without waiting for its WAL flush (`synchronous_commit` off for its own transaction
        # only): a server crash may undo claims of the last moments, and their records are pending again, as
        # after a crash of the worker holding them; their attempts, if they ran, end under a fence that no
        # longer matches. Every later commit that waits (an enqueue, a finish) flushes the claim's WAL too.
        relaxed = "relaxed AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true))"
        claim = (
            f"UPDATE {tasks} AS t {self.claim_set()} FROM picked, relaxed WHERE t.id = picked.id RETURNING {returning}"
        )
        self.sql_claim_one = (
            f"WITH {relaxed}, picked AS MATERIALIZED (SELECT id FROM {tasks} WHERE {due} AND queue = :queue "
            f"AND NOT EXISTS (SELECT 1 FROM {names.pauses} WHERE queue = :queue) "
            f"{order} LIMIT :limit FOR UPDATE SKIP LOCKED) {claim}"
        )
        # One index range per queue that is not paused (each range already in due order), merged: never a sort of a
        # whole backlog. Paused queues are left out before any range is read.
        unpaused = (
            f"(SELECT u.name FROM unnest(CAST(:queues AS varchar[])) AS u(name) "
            f"WHERE NOT EXISTS (SELECT 1 FROM {names.pauses} AS p WHERE p.queue = u.name)) AS q"
        )
        self.sql_claim_many = (
            f"WITH {relaxed}, picked AS MATERIALIZED (SELECT c.id FROM {unpaused} "
            f"CROSS JOIN LATERAL (SELECT id, priority, scheduled_at FROM {tasks} WHERE {due} AND queue = q.name "
            f"{order} LIMIT :limit FOR UPDATE SKIP LOCKED) AS c ORDER BY c.priority DESC, c.scheduled_at, c.id "
            f"LIMIT :limit) {claim}"
        )
        # Statements that change several rows a worker holds (a batched finish, a renewal) first lock them in id
        # order: two of them (on two connections) would otherwise take their rows in whatever order their plans
        # meet them, wait for each other, and PostgreSQL would abort one. The update only reaches locked rows.
        locked = (
            f"locked AS MATERIALIZED (SELECT id FROM {tasks} WHERE id = ANY(CAST(:ids AS varchar[])) "
            "ORDER BY id FOR UPDATE)"
        )
        finish = (
            f"WITH {locked}, b AS (SELECT * FROM unnest(CAST(:ids AS varchar[]), CAST(:owners AS varchar[]), "
            "CAST(:tokens AS bigint[]), CAST(:statuses AS varchar[]), CAST(:moments AS timestamptz[]), "
            "CAST(:results AS text[]), CAST(:errors AS text[])) "
            "AS b(id, owner, token, status, moment, result, error)), "
            f"u AS (UPDATE {tasks} AS t SET status = b.status, finished_at = b.moment, result = b.result, "
            "error = b.error, active_key = NULL, owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE "
            "FROM locked, b WHERE t.id = locked.id AND t.id = b.id AND t.owner = b.owner AND t.token = b.token "
            "RETURNING t.id) "
        )
        # The fence leaves out `t.status = 'running'`: only running records have an owner (every other
        # transition clears it), and that condition would let the planner drive the join from the partial
        # index of running records, whose statistics lag behind a burst of claims: a nested loop that
        # re-reads the unnested arrays once per running row instead of one primary-key lookup per finish.
        # One notification per _IDS_PER_NOTIFICATION finished ids (comma-separated), not one per id; an id
        # holding a comma, or long, goes alone. Joining the one-row count makes the notifying CTE run, once.
        chunk = (
            "CASE WHEN strpos(id, ',') > 0 OR octet_length(id) > 380 THEN -n "
            f"ELSE n / {_IDS_PER_NOTIFICATION} END AS chunk "
            "FROM (SELECT id, row_number() OVER () AS n FROM u) AS numbered"
        )
        self.sql_finish_many = (
            f"{finish}, n AS MATERIALIZED (SELECT count(*) FROM (SELECT pg_notify(:notify_channel, "
            f"string_agg(c.id, ',')) FROM (SELECT id, {chunk}) AS c GROUP BY c.chunk) AS sent) SELECT u.id FROM u, n"
            if notify
            else f"{finish}SELECT id FROM u"
        )
        self._finishes: Coalescer[Ending, TaskRecord | None] = Coalescer(
            self._finish_many, key=itemgetter(0), max_in_flight=2
        )
        self.sql_renew = (
            f"WITH {locked} UPDATE {tasks} AS t SET lease_expires_at = :lease_expires_at FROM locked, unnest("
            "CAST(:ids AS varchar[]), CAST(:owners AS varchar[]), CAST(:tokens AS bigint[])) AS l(id, owner, token) "
            "WHERE t.id = locked.id AND t.id = l.id AND t.owner = l.owner AND t.token = l.token "
            "AND t.status = 'running' RETURNING t.id, t.cancel_requested"
        )
        self.sql_save_progress = (
            f"UPDATE {tasks} AS t SET progress = l.progress FROM unnest(CAST(:ids AS varchar[]), "
            "CAST(:owners AS varchar[]), CAST(:tokens AS bigint[]), CAST(:progress AS text[])) "
            "AS l(id, owner, token, progress) "
            "WHERE t.id = l.id AND t.owner = l.owner AND t.token = l.token AND t.status = 'running'"
        )
        expire = (
            f"WITH picked AS MATERIALIZED (SELECT id FROM {tasks} WHERE status = 'pending' AND expires_at <= :now "
            "ORDER BY expires_at LIMIT :limit FOR UPDATE SKIP LOCKED), "
            f"expired AS (UPDATE {tasks} AS t SET status = 'expired', finished_at = :now, active_key = NULL "
            "FROM picked WHERE t.id = picked.id RETURNING t.id) "
        )
        self.sql_expire = (
            f"{expire}SELECT expired.id FROM expired CROSS JOIN LATERAL "
            "(SELECT pg_notify(:notify_channel, expired.id)) AS n"
            if notify
            else f"{expire}SELECT id FROM expired"
        )
        self.sql_prune = (
            f"WITH picked AS MATERIALIZED (SELECT id FROM {tasks} WHERE status IN {TERMINAL_SQL} "
            "AND finished_at < :before ORDER BY finished_at LIMIT :limit FOR UPDATE SKIP LOCKED) "
            f"DELETE FROM {tasks} AS t USING picked WHERE t.id = picked.id"
        )

    def _returning_ids(self, insert: str, notify: bool) -> str:
        """``insert`` returning its inserted ids as one array in one row, not one row each (a driver builds one
        object per row it receives, and thousands of them per call cost the client more than the array's strings);
        with ``notify``, one notification per queue that got work and is not paused. Joining the one-row count
        makes the notifying CTE run, once."""
        if not notify:
            return f"WITH ins AS ({insert}) SELECT array_agg(id) AS ids FROM ins"
        return (
            f"WITH ins AS ({insert}), n AS MATERIALIZED (SELECT count(*) FROM "
            "(SELECT pg_notify(:notify_channel, d.queue) FROM (SELECT DISTINCT queue FROM ins) AS d "
            f"WHERE NOT EXISTS (SELECT 1 FROM {self.names.pauses} AS p WHERE p.queue = d.queue)) AS sent) "
            "SELECT (SELECT array_agg(id) FROM ins) AS ids FROM n"
        )

    async def check_server(self) -> None:
        """PostgreSQL 9.5+ has everything used here; nothing to check."""

    @asynccontextmanager
    async def migration_guard(self, session: Any) -> AsyncIterator[bool | None]:
        """Migrate inside one transaction holding a transaction-level advisory lock: other starters wait for it.

        The lock ends with the transaction, so it can never outlive it on a server connection: not when the
        process dies, and not behind a transaction-mode pooler (PgBouncer), where a session-level lock stays
        on whichever server connection took it and an unlock may run on another.
        """
        await self.relock(session)
        try:
            yield False
        except BaseException:
            with suppress(Exception):
                await session.rollback()
            raise
        await session.commit()

    async def relock(self, session: Any) -> None:
        """Open the migration transaction and wait for, then hold, the advisory lock."""
        await session.begin()
        await session.execute("SELECT pg_advisory_xact_lock(:key)", {"key": self.migration_lock_key})

    @property
    def migration_lock_key(self) -> int:
        """The advisory lock key of this table prefix's migrations (a signed 64-bit hash of the extension name)."""
        key = int.from_bytes(hashlib.sha256(f"litestar_queues:{self.names.extension}".encode()).digest()[:8], "big")
        return key - (1 << 63 if key >= 1 << 63 else 0)

    def in_list(self, column: str, name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
        """Bind the list as one ``varchar[]``."""
        return f"{column} = ANY(CAST(:{name} AS varchar[]))", {name: list(values)}

    def notifying(self, sql: str, channel: str, column: str) -> tuple[str, dict[str, Any]]:
        """``WITH u AS (<update> RETURNING …) SELECT u.*`` plus one ``pg_notify`` per returned row."""
        if not self.notify:
            return sql, {}
        wrapped = (
            f"WITH u AS ({sql}) SELECT u.* FROM u CROSS JOIN LATERAL "
            f"(SELECT pg_notify(:notify_channel, u.{column})) AS n"
        )
        return wrapped, {"notify_channel": channel}

    async def resume_queue(self, queue: str) -> bool:
        """Delete the queue's pause row, notifying the queue's waiters (with notifications on)."""
        if not self.notify:
            return await super().resume_queue(queue)
        sql, extra = self.notifying(f"{self.sql_resume} RETURNING queue", self.names.wakeup_channel, "queue")
        return bool(await self.db.select(sql, {"queue": queue, **extra}))

    async def insert_tasks(self, records: Sequence[TaskRecord], *, session: Any = None) -> set[str]:
        """``INSERT … SELECT … FROM json_to_recordset(<the rows as one JSON text>) ON CONFLICT DO NOTHING``,
        chunked (chunks of a large call run concurrently on pooled connections, or one after the other in the
        caller's ``session``; no two records of one call share an id or a key).

        One text parameter holding the rows as msgspec JSON costs the client far less than one array per column
        (asyncpg checks every array element against abstract base classes; psycopg adapts each in Python).
        """
        if len(records) == 1:  # scalar parameters: cheaper for both sides than a one-row JSON text
            params = dict(zip(TASK_COLUMNS, encode_task(records[0], self.codec), strict=True))
            if self.notify:
                params["notify_channel"] = self.names.wakeup_channel
            return {found["id"] for found in await self.select_on(session, self.sql_insert_one, params)}
        size = min(_ROWS_PER_INSERT, max(_MIN_ROWS_PER_PARALLEL_INSERT, -(-len(records) // _PARALLEL_INSERTS)))
        chunks = [records[start : start + size] for start in range(0, len(records), size)]
        inserted: set[str] = set()
        if session is not None:
            for chunk in chunks:
                inserted |= await self._insert_chunk(chunk, session)
            return inserted
        for first in range(0, len(chunks), _PARALLEL_INSERTS):
            outcomes = await asyncio.gather(
                *(self._insert_chunk(chunk) for chunk in chunks[first : first + _PARALLEL_INSERTS]),
                return_exceptions=True,
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
                inserted |= outcome
        return inserted

    async def _insert_chunk(self, chunk: Sequence[TaskRecord], session: Any = None) -> set[str]:
        shared = encode_shared_rows(chunk, self.codec)
        sql = self.sql_insert if shared is None else self.sql_insert_shared
        params: dict[str, Any] = (
            {"rows": encode_json_rows(chunk, self.codec)}
            if shared is None
            else {"shared": shared[0], "rows": shared[1]}
        )
        if self.notify:
            params["notify_channel"] = self.names.wakeup_channel
        # Concurrent bulk enqueues whose keys collide wait for each other's uncommitted rows, in row order: a
        # deadlock is possible, and retried outside a caller's transaction (the insert skips conflicts, so nothing
        # applies twice).
        (row,) = await self.select_on(session, sql, params)
        return set(row["ids"] or ())

    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_expires_at: datetime
    ) -> list[TaskRecord]:
        """One statement: lock due rows (skipping locked ones), start their attempts, return them."""
        params: dict[str, Any] = {"owner": owner, "now": now, "lease_expires_at": lease_expires_at, "limit": limit}
        if len(queues) == 1:
            params["queue"] = queues[0]
            sql = self.sql_claim_one
        else:
            params["queues"] = list(queues)
            sql = self.sql_claim_many
        return [self.decode(row) for row in await self.db.select(sql, params)]

    def finish(
        self, lease: Lease, outcome: Outcome, *, now: datetime, claimed: TaskRecord | None = None
    ) -> Awaitable[TaskRecord | None]:
        """Terminal outcomes of concurrent callers share one statement (see ``batching``); the rest run alone.

        The shared statement returns only ids: a caller's ``claimed`` record gives its finished record,
        the finished records of callers without one are read back.
        """
        if as_status(outcome.status) is TaskStatus.PENDING or outcome.only_if_lease_expired:
            return super().finish(lease, outcome, now=now)
        return self._finishes.submit(ending(lease, outcome, now, claimed))

    async def _finish_many(self, endings: Sequence[Ending]) -> list[TaskRecord | None]:
        params: dict[str, Any] = ending_arrays(endings)
        if self.notify:
            params["notify_channel"] = self.names.finish_channel
        done = {row["id"] for row in await self.retrying(lambda: self.db.select(self.sql_finish_many, params))}
        return await finished_records(endings, done, self.fetch_by_ids)

    async def announce_finished(self, record_id: str) -> None:
        """``pg_notify`` on the finish channel."""
        if self.notify:
            await self.db.select(
                "SELECT pg_notify(:channel, :id)", {"channel": self.names.finish_channel, "id": record_id}
            )

    async def renew(self, leases: Sequence[Lease], *, lease_expires_at: datetime) -> dict[str, bool]:
        """One statement joining the fences as arrays."""
        params = {"lease_expires_at": lease_expires_at, **lease_arrays(leases)}
        rows = await self.retrying(lambda: self.db.select(self.sql_renew, params))
        return {row["id"]: bool(row["cancel_requested"]) for row in rows}

    async def save_progress(self, updates: Sequence[tuple[Lease, str]]) -> None:
        """One statement joining the fences and their progress as arrays."""
        params = {**lease_arrays([lease for lease, _ in updates]), "progress": [progress for _, progress in updates]}
        await self.db.execute(self.sql_save_progress, params)

    async def expire(self, *, now: datetime, limit: int) -> int:
        """Expire a bounded batch, skipping rows another transaction holds; notify their waiters."""
        params: dict[str, Any] = {"now": now, "limit": limit}
        if self.notify:
            params["notify_channel"] = self.names.finish_channel
        return len(await self.db.select(self.sql_expire, params))

    async def prune(self, *, finished_before: datetime, limit: int) -> int:
        """Delete a bounded batch of the oldest finished records."""
        return await self.db.execute(self.sql_prune, {"before": finished_before, "limit": limit})

    async def upsert_worker(self, worker_id: str, info: str, expires_at: datetime) -> None:
        """``INSERT … ON CONFLICT DO UPDATE``."""
        await self.upsert_worker_on_conflict(worker_id, info, expires_at)

    async def acquire_lock(self, name: str, *, owner: str, expires_at: datetime, now: datetime) -> bool:
        """One conditional upsert."""
        return await self.acquire_lock_on_conflict(name, owner=owner, expires_at=expires_at, now=now)

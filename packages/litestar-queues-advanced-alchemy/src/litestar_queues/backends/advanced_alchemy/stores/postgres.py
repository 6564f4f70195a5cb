"""PostgreSQL (asyncpg, psycopg): one-statement claims with ``FOR UPDATE SKIP LOCKED``, and NOTIFY wakeups.

Lists are bound as one array (``= ANY(…)``, ``unnest(…)``), so a statement's text never depends on a list's length.
Notifications are sent by the statements that make work available or finish it (``pg_notify`` per returned row;
PostgreSQL folds identical notifications of one transaction into one) and are delivered when their transaction
commits: inside a caller's transaction, only once the caller commits, and never after a rollback.

Terminal finishes of concurrent attempts share one statement (a worker with fifty slots ends up to fifty attempts at
once, and a round trip each would be its bottleneck): their fences are bound as arrays and joined with
``unnest(…)``, and the finished ids are announced twenty to a notification.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, ClassVar, TypeVar

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    String,
    Text,
    any_,
    bindparam,
    case,
    cast,
    column,
    exists,
    false,
    func,
    literal_column,
    null,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSON, TIMESTAMP
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.types import TypeEngine

from litestar_queues.backends.advanced_alchemy.stores.base import ConflictSkippingStore, status_is
from litestar_queues.backends.advanced_alchemy.stores.connections import DriverConnections
from litestar_queues.backends.advanced_alchemy.stores.native import NATIVE_DRIVERS, NativeStatement
from litestar_queues.backends.advanced_alchemy.tables import QueueTables
from litestar_queues.records import Lease, Outcome, TaskRecord, TaskStatus, as_status
from litestar_queues.sql.batching import Coalescer
from litestar_queues.sql.finishing import ENDING_ARRAYS, Ending, ending, ending_arrays, finished_records, lease_arrays
from litestar_queues.sql.rows import (
    DEFAULTED_COLUMNS,
    PER_ROW_COLUMNS,
    SHARED_COLUMNS,
    TASK_COLUMNS,
    PostgresValueCodec,
    encode_json_rows,
    encode_shared_rows,
)

__all__ = ("PostgresStore",)

_Statement = TypeVar("_Statement", bound=ClauseElement)
_ROWS_PER_INSERT = 5000
_RELAXED = func.set_config("synchronous_commit", "off", true()).label("relaxed")
"""A claim commits without waiting for its WAL flush: ``synchronous_commit`` is off for its own transaction only
(evaluated with the rows it picks). A server crash may undo the claims of its last moments, whose records are then
pending again, as after a crash of the worker holding them; their attempts, if they ran, end under a fence that no
longer matches. Every later commit that waits (an enqueue, a finish) flushes the claim's WAL too."""

_IDS_PER_NOTIFICATION = 20
"""Finished ids announced per notification (record ids are UUIDs: 20 of them stay far below the 8000-byte payload)."""
_ENDING_COLUMNS: tuple[tuple[str, TypeEngine[Any]], ...] = (
    ("id", String()),
    ("owner", String()),
    ("token", BigInteger()),
    ("status", String()),
    ("moment", TIMESTAMP(timezone=True)),
    ("result", Text()),
    ("error", Text()),
)
"""The fields of an ending (``litestar_queues.sql.finishing.Ending``) bound as arrays, in ``ENDING_ARRAYS`` order."""


class PostgresStore(ConflictSkippingStore):
    """PostgreSQL 12+."""

    family: ClassVar[str] = "postgres"

    def __init__(self, engine: AsyncEngine, tables: QueueTables, *, notify: bool, native: bool) -> None:
        """Build the statements; with ``notify``, work-making and finishing statements also ``pg_notify``; with
        ``native``, the ones a worker repeats run on the driver connection (see :mod:`.native`)."""
        super().__init__(engine, tables, PostgresValueCodec())
        self.notify = notify
        t = tables.tasks
        self.on_conflict(pg_insert)

        def typed(names: Sequence[str]) -> list[Any]:
            return [column(name, _plain(t.c[name].type)) for name in names]

        def inserting(source: Any) -> Any:
            return self._inserted_count(
                pg_insert(t)
                .from_select(list(TASK_COLUMNS), source)
                .on_conflict_do_nothing()
                .returning(t.c.id, t.c.queue)
            )

        # The JSON travels as a text parameter (a JSON one would go through the driver's JSON codec, if any).
        rows = (
            func.json_to_recordset(cast(bindparam("rows", type_=Text), JSON))
            .table_valued(*typed(TASK_COLUMNS))
            .render_derived(name="r", with_types=True)
        )
        self.sql_insert = inserting(select(*(rows.c[name] for name in TASK_COLUMNS)))
        # Records sharing all but their per-row columns (see encode_shared_rows): those once, joined to each row.
        shared = (
            func.json_to_record(cast(bindparam("shared", type_=Text), JSON))
            .table_valued(*typed(SHARED_COLUMNS))
            .render_derived(name="s", with_types=True)
        )
        per_row = (
            func.json_to_recordset(cast(bindparam("rows", type_=Text), JSON))
            .table_valued(*typed(PER_ROW_COLUMNS))
            .render_derived(name="r", with_types=True)
        )
        picked = [
            func.coalesce(per_row.c[name], shared.c[name])
            if name in DEFAULTED_COLUMNS
            else per_row.c[name]
            if name in PER_ROW_COLUMNS
            else shared.c[name]
            for name in TASK_COLUMNS
        ]
        self.sql_insert_shared = inserting(select(*picked).select_from(shared.join(per_row, true())))
        pauses = tables.pauses
        # Statements that change several rows a worker holds (a batched finish, a renewal) first lock them in id
        # order: two of them (on two connections) would otherwise take their rows in whatever order their plans meet
        # them, wait for each other, and PostgreSQL would abort one. The update only reaches locked rows.
        self.locked = (
            select(t.c.id)
            .where(t.c.id == any_(bindparam("ids", type_=ARRAY(String))))
            .order_by(t.c.id)
            .with_for_update()
            .cte("locked")
            .prefix_with("MATERIALIZED")
        )
        leases = (
            func.unnest(
                bindparam("ids", type_=ARRAY(String)),
                bindparam("owners", type_=ARRAY(String)),
                bindparam("tokens", type_=ARRAY(BigInteger)),
            )
            .table_valued(column("id", String), column("owner", String), column("token", BigInteger))
            .render_derived(name="l")
        )
        self.sql_renew = (
            update(t)
            .where(
                t.c.id == self.locked.c.id,
                t.c.id == leases.c.id,
                t.c.owner == leases.c.owner,
                t.c.token == leases.c.token,
                status_is(t.c.status, "running"),
            )
            .values(lease_expires_at=bindparam("lease_until"))
            .returning(t.c.id, t.c.cancel_requested)
        )
        # New work of a paused queue wakes nobody: no worker could claim it.
        progress = (
            func.unnest(
                bindparam("ids", type_=ARRAY(String)),
                bindparam("owners", type_=ARRAY(String)),
                bindparam("tokens", type_=ARRAY(BigInteger)),
                bindparam("progress", type_=ARRAY(Text)),
            )
            .table_valued(
                column("id", String), column("owner", String), column("token", BigInteger), column("progress", Text)
            )
            .render_derived(name="l")
        )
        self.sql_save_progress = (
            update(t)
            .where(
                t.c.id == progress.c.id,
                t.c.owner == progress.c.owner,
                t.c.token == progress.c.token,
                status_is(t.c.status, "running"),
            )
            .values(progress=progress.c.progress)
        )
        if notify:
            one = pg_insert(t).values({name: bindparam(name) for name in TASK_COLUMNS}).on_conflict_do_nothing()
            inserted = one.returning(t.c.id, t.c.queue).cte("ins")
            sent = (
                select(func.pg_notify(bindparam("notify_channel"), inserted.c.queue).label("n"))
                .where(self._unpaused(inserted.c.queue))
                .correlate(inserted)
                .lateral("n")
            )
            self.sql_insert_one = select(inserted.c.id).select_from(inserted.outerjoin(sent, true()))
        queue = func.unnest(bindparam("queues", type_=ARRAY(String))).table_valued("name").render_derived(name="q")
        # The rows to change are picked in a MATERIALIZED CTE, evaluated exactly once: the shorter
        # `UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` lets the planner re-run the subquery per
        # outer row in some plans, and a re-run with SKIP LOCKED can pick further rows: more than n.
        one_queue = self._picked(
            select(t.c.id, _RELAXED)
            .where(t.c.queue == bindparam("queue_name"), self.due, self._unpaused(bindparam("queue_name")))
            .order_by(*self.due_order)
        )
        # One index range per queue that is not paused (each range already in due order), merged: never a sort of a
        # whole backlog. Paused queues are left out before any range is read.
        unpaused = select(queue.c.name).where(self._unpaused(queue.c.name)).subquery("u")
        per_queue = (
            select(t.c.id, t.c.priority, t.c.scheduled_at)
            .where(t.c.queue == unpaused.c.name, self.due)
            .order_by(*self.due_order)
            .limit(bindparam("limit"))
            .with_for_update(skip_locked=True)
            .lateral("c")
        )
        many_queues = (
            select(per_queue.c.id, _RELAXED)
            .select_from(unpaused)
            .join(per_queue, true())
            .order_by(per_queue.c.priority.desc(), per_queue.c.scheduled_at, per_queue.c.id)
            .limit(bindparam("limit"))
            .cte("picked")
            .prefix_with("MATERIALIZED")
        )
        self.sql_claim_one = self._claim(one_queue)
        self.sql_claim_many = self._claim(many_queues)
        expiring = self._picked(
            select(t.c.id)
            .where(status_is(t.c.status, "pending"), t.c.expires_at <= bindparam("now"))
            .order_by(t.c.expires_at)
        )
        expire = (
            update(t)
            .where(t.c.id == expiring.c.id)
            .values(status="expired", finished_at=bindparam("now"), active_key=null())
            .returning(t.c.id)
        )
        self.sql_expire, self._expire_params = self.notifying(expire, self.channels[1], "id")
        self.sql_resume_notifying, self._resume_params = self.notifying(
            self.sql_resume.returning(pauses.c.queue), self.channels[0], "queue"
        )
        pruned = self._picked(select(t.c.id).where(self.terminal_before()).order_by(t.c.finished_at))
        self.sql_prune = t.delete().where(t.c.id == pruned.c.id)
        self.sql_finish_many = self._finish_many_statement()
        self._finishes: Coalescer[Ending, TaskRecord | None] = Coalescer(
            self._finish_many, key=itemgetter(0), max_in_flight=2
        )
        repeated = (
            self.sql_insert_one,
            self.sql_insert,
            self.sql_insert_shared,
            self.sql_claim_one,
            self.sql_claim_many,
            self.sql_finish_many,
            self.sql_renew,
            self.sql_save_progress,
            self.sql_earliest,  # an idle worker's next wakeup, after each attempt
        )
        self._native: dict[int, NativeStatement] = {}
        self._natively = native and engine.dialect.driver in NATIVE_DRIVERS
        for statement in repeated:
            self.repeated(statement)
        self.connections = DriverConnections(engine)
        """The pool's connections that native statements run on (a few kept between statements)."""
        self._insert_params = {"notify_channel": self.channels[0]} if notify else {}

    def _inserted_count(self, insert: Any) -> Any:
        """A bulk ``insert`` (returning ``id`` and ``queue``) that answers with one row: how many rows it inserted
        and, only when that is fewer than ``:expected`` (the chunk's records; some conflicted), their ids as one array.
        The ids of a chunk inserted whole are the caller's own: no row per record, no string per id for the driver to
        build (a driver builds an object per row it receives, and thousands of them per call cost the client more
        than the statement). With notifications, one per queue that got work and is not paused, in the same statement
        (so that an enqueue, also in a caller's transaction, stays one statement); joining the one-row count makes the
        notifying CTE run, once."""
        inserted = insert.cte("ins")
        count = func.count()
        counted = select(
            count.label("inserted"),
            case((count < bindparam("expected"), func.array_agg(inserted.c.id))).label("ids"),
        )
        if not self.notify:
            return counted
        queues = select(inserted.c.queue).distinct().subquery("d")
        sent = (
            select(func.count().label("sent"))
            .select_from(
                select(func.pg_notify(bindparam("notify_channel"), queues.c.queue))
                .where(self._unpaused(queues.c.queue))
                .subquery("n")
            )
            .cte("sent")
            .prefix_with("MATERIALIZED")
        )
        row = counted.subquery("c")
        return select(row.c.inserted, row.c.ids).select_from(row.join(sent, true()))

    def _finish_many_statement(self) -> Any:
        """``UPDATE … FROM unnest(<the fences and outcomes as arrays>)`` returning the ids whose fence held."""
        t = self.tables.tasks
        arrays = (
            bindparam(name, type_=ARRAY(kind)) for name, (_, kind) in zip(ENDING_ARRAYS, _ENDING_COLUMNS, strict=True)
        )
        endings = (
            func.unnest(*arrays)
            .table_valued(*(column(field, kind) for field, kind in _ENDING_COLUMNS))
            .render_derived(name="b")
        )
        # The fence leaves out `status = 'running'`: only running records have an owner (every other transition
        # clears it), and that condition would let the planner drive the join from the partial index of running
        # records, whose statistics lag behind a burst of claims.
        finished = (
            update(t)
            .where(
                t.c.id == self.locked.c.id,
                t.c.id == endings.c.id,
                t.c.owner == endings.c.owner,
                t.c.token == endings.c.token,
            )
            .values(
                status=endings.c.status,
                finished_at=endings.c.moment,
                result=endings.c.result,
                error=endings.c.error,
                active_key=null(),
                owner=null(),
                lease_expires_at=null(),
                cancel_requested=false(),
            )
            .returning(t.c.id)
        )
        if not self.notify:
            return finished
        changed = finished.cte("u")
        # One notification per _IDS_PER_NOTIFICATION finished ids (comma-separated), not one per id; an id holding a
        # comma, or long, goes alone.
        position = func.row_number().over()
        alone = (func.strpos(changed.c.id, literal_column("','")) > 0) | (func.octet_length(changed.c.id) > 380)
        numbered = select(
            changed.c.id,
            case((alone, -position), else_=position.op("/")(_IDS_PER_NOTIFICATION)).label("chunk"),
        ).subquery("numbered")
        announced = select(
            func.pg_notify(bindparam("notify_channel"), func.string_agg(numbered.c.id, literal_column("','")))
        ).group_by(numbered.c.chunk)
        # Joining the one-row count makes the notifying CTE run, once.
        sent = select(func.count()).select_from(announced.subquery("sent")).cte("n").prefix_with("MATERIALIZED")
        return select(changed.c.id).select_from(changed.join(sent, true()))

    def finish(
        self, lease: Lease, outcome: Outcome, *, now: datetime, claimed: TaskRecord | None = None
    ) -> Awaitable[TaskRecord | None]:
        """Terminal outcomes of concurrent callers share one statement (see ``litestar_queues.sql.batching``); the
        rest run alone. A caller's ``claimed`` record gives its finished record, the others are read back."""
        if as_status(outcome.status) is TaskStatus.PENDING or outcome.only_if_lease_expired:
            return super().finish(lease, outcome, now=now, claimed=claimed)
        return self._finishes.submit(ending(lease, outcome, now, claimed))

    async def _finish_many(self, endings: Sequence[Ending]) -> list[TaskRecord | None]:
        params: dict[str, Any] = ending_arrays(endings)
        if self.notify:
            params["notify_channel"] = self.channels[1]
        done = {row["id"] for row in await self.retrying(lambda: self.rows(self.sql_finish_many, params))}
        return await finished_records(endings, done, self._read)

    async def _read(self, ids: list[str]) -> list[TaskRecord]:
        return [self.decode(row) for row in await self.rows(self.sql_by_ids, {"values": ids})]

    def repeated(self, statement: _Statement) -> _Statement:
        """Run ``statement``, one the backend repeats, as a native statement (with ``native``; see :mod:`.native`)
        from now on; returned as is."""
        if self._natively:
            self._native[id(statement)] = NativeStatement(statement, self.engine.dialect)
        return statement

    async def rows(self, statement: Any, params: dict[str, Any] | None = None) -> list[Any]:
        """A statement the backend repeats runs on a driver connection of the pool (see :mod:`.native`)."""
        compiled = self._native.get(id(statement))
        if compiled is None:
            return await super().rows(statement, params)
        async with self.connections.borrow() as driver:
            return await compiled.rows(driver, params or {})

    async def close(self) -> None:
        """Give back the connections kept between native statements."""
        await self.connections.close()

    async def insert_many(self, connection: AsyncConnection | None, records: Sequence[TaskRecord]) -> set[str]:
        """``INSERT … SELECT … FROM json_to_recordset(<the rows as one JSON text>) ON CONFLICT DO NOTHING``, a chunk
        at a time: one text parameter costs the drivers far less than SQLAlchemy's multi-row VALUES. A chunk's
        records have distinct ids, so as many inserted rows as records means every one of them was inserted."""
        inserted: set[str] = set()
        for start in range(0, len(records), _ROWS_PER_INSERT):
            chunk = records[start : start + _ROWS_PER_INSERT]
            shared = encode_shared_rows(chunk, self.codec)
            params: dict[str, Any] = {"expected": len(chunk), **self._insert_params}
            if shared is None:
                statement, params["rows"] = self.sql_insert, encode_json_rows(chunk, self.codec)
            else:
                statement, params["shared"], params["rows"] = self.sql_insert_shared, *shared
            (row,) = await self.run(connection, statement, params)
            if row["inserted"] == len(chunk):
                inserted.update(record.id for record in chunk)
            else:
                inserted.update(row["ids"] or ())
        return inserted

    async def renew(self, leases: Sequence[Lease], *, lease_expires_at: datetime) -> dict[str, bool]:
        """One statement joining the fences as arrays."""
        params = {"lease_until": lease_expires_at, **lease_arrays(leases)}
        rows = await self.retrying(lambda: self.rows(self.sql_renew, params))
        return {row["id"]: bool(row["cancel_requested"]) for row in rows}

    async def save_progress(self, updates: Sequence[tuple[Lease, str]]) -> None:
        """One statement joining the fences and their progress as arrays."""
        params = {**lease_arrays([lease for lease, _ in updates]), "progress": [progress for _, progress in updates]}
        await self.rows(self.sql_save_progress, params)

    def is_deadlock(self, error: Exception) -> bool:
        """SQLSTATE 40P01, raised through SQLAlchemy or by the driver itself (a native statement)."""
        source = error.orig if isinstance(error, DBAPIError) else error
        return getattr(source, "sqlstate", None) == "40P01"

    async def announce_finished(self, record_id: str) -> None:
        """``pg_notify`` on the finish channel."""
        if self.notify:
            await self.rows(select(func.pg_notify(self.channels[1], record_id)))

    async def resume_queue(self, queue: str) -> bool:
        """Delete the queue's pause row, notifying the queue's waiters (with notifications on)."""
        if not self.notify:
            return await super().resume_queue(queue)
        return bool(await self.rows(self.sql_resume_notifying, {"queue_name": queue, **self._resume_params}))

    def _unpaused(self, queue: ColumnElement[Any]) -> ColumnElement[bool]:
        """``NOT EXISTS`` a pause row of ``queue``."""
        pauses = self.tables.pauses
        return ~exists().where(pauses.c.queue == queue).correlate_except(pauses)

    def _picked(self, rows: Select[Any]) -> Any:
        """``rows`` limited to ``:limit`` and locked (skipping locked ones) in a MATERIALIZED CTE named ``picked``."""
        return (
            rows.limit(bindparam("limit")).with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
        )

    def _claim(self, picked: Any) -> Any:
        """The claim of the rows ``picked`` (which switch ``synchronous_commit`` off, see ``_RELAXED``)."""
        t = self.tables.tasks
        return update(t).where(t.c.id == picked.c.id).values(self.claim_values).returning(*self.columns)

    def where_in(self, statement: Any, column: ColumnElement[Any]) -> Any:
        """Bind the list as one ``varchar[]``."""
        return statement.where(column == any_(bindparam("values", type_=ARRAY(String))))

    def notifying(self, statement: Any, channel: str, column: str) -> tuple[Any, dict[str, Any]]:
        """``WITH u AS (<statement>) SELECT u.* FROM u JOIN LATERAL (SELECT pg_notify(:channel, u.<column>))``."""
        if not self.notify:
            return statement, {}
        changed = statement.cte("u")
        sent = (
            select(func.pg_notify(bindparam("notify_channel"), changed.c[column]).label("n"))
            .correlate(changed)
            .lateral("n")
        )
        return select(*changed.c).select_from(changed.join(sent, true())), {"notify_channel": channel}

    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_expires_at: datetime
    ) -> list[TaskRecord]:
        """One statement: lock due rows (skipping locked ones), start their attempts, return them."""
        params: dict[str, Any] = {**self.claim_params(owner, now, lease_expires_at), "limit": limit}
        if len(queues) == 1:
            params["queue_name"] = queues[0]
            statement = self.sql_claim_one
        else:
            params["queues"] = list(queues)
            statement = self.sql_claim_many
        return [self.decode(row) for row in await self.rows(statement, params)]

    async def expire(self, *, now: datetime, limit: int) -> int:
        """Expire a bounded batch, skipping rows another transaction holds; notify their waiters."""
        return len(await self.rows(self.sql_expire, {"now": now, "limit": limit, **self._expire_params}))

    async def prune(self, *, finished_before: datetime, limit: int) -> int:
        """Delete a bounded batch of the oldest finished records."""
        return await self.execute(self.sql_prune, {"before": finished_before, "limit": limit})


def _plain(kind: TypeEngine[Any]) -> TypeEngine[Any]:
    """The PostgreSQL type of a column, without collation (a ``json_to_recordset`` column list)."""
    variant = kind._variant_mapping.get("postgresql", kind)
    if isinstance(variant, String) and not isinstance(variant, Text):
        return String()
    return variant

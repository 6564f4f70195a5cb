"""SQLAlchemy Core statements on the queue tables: what PostgreSQL and SQLite share, and the interface of every family.

Every state change is one guarded statement (its ``WHERE`` holds the fence or the expected status) whose returned
rows decide the outcome: PostgreSQL and SQLite have ``UPDATE … RETURNING``. MySQL/MariaDB have no ``UPDATE …
RETURNING`` and override those operations (:mod:`.mysql`). Statements are built once per backend, so SQLAlchemy
compiles each of them once and then only binds values. Status values in ``WHERE`` clauses are literals, not bound
parameters: the partial indexes (``WHERE status = 'pending'``) serve a statement only when the planner can see
the value, also in the generic plans of prepared statements.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, nullcontext
from datetime import datetime
from typing import Any, ClassVar, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Delete,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    case,
    delete,
    false,
    func,
    literal_column,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from litestar_queues.backends.advanced_alchemy.tables import QueueTables
from litestar_queues.records import EnqueueOutcome, Lease, Outcome, RecordFilter, TaskRecord, TaskStatus, as_status
from litestar_queues.semantics import finished_record, requeue_refused
from litestar_queues.sql.enqueue import enqueue_records
from litestar_queues.sql.failures import retrying
from litestar_queues.sql.finishing import FinishParams, finish_params, finish_values
from litestar_queues.sql.rows import TASK_COLUMNS, ValueCodec, decode_task, encode_task

__all__ = ("ConflictSkippingStore", "Inserter", "Store", "status_in", "status_is")

_T = TypeVar("_T")
_S = TypeVar("_S", Select[Any], Update, Delete)
_SELECTED = tuple(name for name in TASK_COLUMNS if name != "active_key")
_REQUEUEABLE = ("failed", "cancelled", "expired")
_TERMINAL = ("completed", "failed", "cancelled", "expired")
_FINISH_BINDS = FinishParams(
    id="rid",
    owner="lease_owner",
    token="lease_token",  # noqa: S106 (a bind name)
    error="new_error",
    status="new_status",
    now="now",
    result="new_result",
    scheduled_at="due_at",
)
"""A finish's bind names: SQLAlchemy reserves the updated columns' own names."""


def status_is(column: ColumnElement[Any], status: str) -> ColumnElement[bool]:
    """``column = '<status>'`` with the value as a literal (see the module docstring)."""
    return column == literal_column(f"'{status}'")


def status_in(column: ColumnElement[Any], statuses: Sequence[str]) -> ColumnElement[bool]:
    """``column IN ('<a>', '<b>', …)`` with literal values."""
    return column.in_([literal_column(f"'{status}'") for status in statuses])


class Inserter(ABC):
    """Writes records on one connection (the backend's own, or the caller's inside their transaction): the
    :class:`~litestar_queues.sql.enqueue.RecordInserter` that :func:`~litestar_queues.sql.enqueue.enqueue_records`
    deduplicates through."""

    __slots__ = ("connection", "store")

    def __init__(self, store: Store, connection: AsyncConnection | None) -> None:
        """Write through ``store``'s statements on ``connection``: the caller's, whose transaction SQLAlchemy
        manages, or one of the backend's; ``None``: each statement on a pooled connection of its own, committing by
        itself."""
        self.store = store
        self.connection = connection

    @abstractmethod
    async def insert_tasks(self, records: Sequence[TaskRecord]) -> set[str]:
        """Insert records, skipping any that conflict on id or active key; return the inserted ids."""

    async def fetch_by_ids(self, ids: Sequence[str]) -> list[TaskRecord]:
        """Return the stored records with these ids."""
        return await self._fetch(self.store.sql_by_ids, ids)

    async def fetch_active_by_keys(self, keys: Sequence[str]) -> list[TaskRecord]:
        """Return the active records holding these keys."""
        return await self._fetch(self.store.sql_by_active_keys, keys)

    async def _fetch(self, statement: Select[Any], values: Sequence[str]) -> list[TaskRecord]:
        rows = await self.store.run(self.connection, statement, {"values": list(values)})
        return [self.store.decode(row) for row in rows]


class Store(ABC):
    """Storage primitives of the tasks, workers and locks tables for one database family.

    Methods take and return :class:`TaskRecord` values; each runs on connections of the engine and leaves no
    transaction open (the caller's own transaction, for enqueues inside it, is never committed here).
    """

    family: ClassVar[str]
    """``postgres``, ``sqlite`` or ``mysql``."""
    sql_pause: Any
    """``INSERT`` of a pause row (``:queue_name``, ``:paused_at``) that skips an existing one (set by the family;
    with ``RETURNING`` of the inserted row where it has one)."""

    def __init__(self, engine: AsyncEngine, tables: QueueTables, codec: ValueCodec) -> None:
        """Build the statements on ``tables``; run them on ``engine``."""
        self.engine = engine
        self.tables = tables
        self.codec = codec
        self.autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.channels = (f"{tables.prefix}wakeup", f"{tables.prefix}finish")
        """The notification channels of new work (payload: the queue) and of finished records (payload: ids)."""
        t = tables.tasks
        self.columns = [t.c[name] for name in _SELECTED]
        self.sql_get = select(*self.columns).where(t.c.id == bindparam("rid"))
        self.sql_by_ids = self.where_in(select(*self.columns), t.c.id)
        self.sql_by_active_keys = self.where_in(select(*self.columns), t.c.active_key)
        self.sql_get_by_key = (
            select(*self.columns)
            .where(t.c.dedup_key == bindparam("key"))
            .order_by(t.c.active_key.is_(None), t.c.created_at.desc(), t.c.id.desc())
            .limit(1)
        )
        self.sql_status = select(t.c.status).where(t.c.id == bindparam("rid"))
        self.due = and_(
            status_is(t.c.status, "pending"),
            t.c.scheduled_at <= bindparam("now"),
            or_(t.c.expires_at.is_(None), t.c.expires_at > bindparam("now")),
        )
        self.due_order = (t.c.priority.desc(), t.c.scheduled_at, t.c.id)
        self.claim_values: dict[str, Any] = {
            "status": "running",
            "owner": bindparam("lease_owner"),
            "token": t.c.token + 1,
            "attempts": t.c.attempts + 1,
            "started_at": bindparam("now"),
            "lease_expires_at": bindparam("lease_until"),
        }
        self.sql_transfer = (
            update(t)
            .where(
                t.c.id == bindparam("rid"),
                status_is(t.c.status, "running"),
                t.c.owner == bindparam("lease_owner"),
                t.c.token == bindparam("lease_token"),
            )
            .values(owner=bindparam("new_owner"), token=t.c.token + 1, lease_expires_at=bindparam("lease_until"))
        )
        self.sql_claim_record = (
            update(t).where(t.c.id == bindparam("rid"), status_is(t.c.status, "pending")).values(self.claim_values)
        )
        self.sql_expired_leases = (
            select(*self.columns)
            .where(status_is(t.c.status, "running"), t.c.lease_expires_at <= bindparam("now"))
            .order_by(t.c.lease_expires_at, t.c.id)
            .limit(bindparam("limit"))
        )
        self.sql_cancel_pending = (
            update(t)
            .where(t.c.id == bindparam("rid"), status_is(t.c.status, "pending"))
            .values(status="cancelled", finished_at=bindparam("now"), active_key=null())
        )
        self.sql_cancel_running = (
            update(t)
            .where(t.c.id == bindparam("rid"), status_is(t.c.status, "running"))
            .values(cancel_requested=true())
        )
        self.sql_requeue = (
            update(t)
            .where(t.c.id == bindparam("rid"), status_in(t.c.status, _REQUEUEABLE))
            .values(
                status="pending",
                scheduled_at=bindparam("now"),
                attempts=0,
                finished_at=null(),
                result=null(),
                error=null(),
                progress=null(),
                expires_at=null(),
                cancel_requested=false(),
                active_key=t.c.dedup_key,
            )
        )
        self.sql_count_all = select(t.c.status, func.count().label("n")).group_by(t.c.status)
        self.sql_count_queue = self.sql_count_all.where(t.c.queue == bindparam("queue_name"))
        # Each status counted in its own subquery with the status as a literal, so each reads the index that covers
        # it (claim, lease, ended) and stops after :cap rows.
        self.sql_count_capped = {by_queue: self._capped_counts(by_queue=by_queue) for by_queue in (False, True)}
        oldest = select(func.min(t.c.scheduled_at).label("oldest")).where(self.due)
        self.sql_oldest_all = oldest
        self.sql_oldest_queue = oldest.where(t.c.queue == bindparam("queue_name"))
        pauses = tables.pauses
        self.unpaused = t.c.queue.not_in(select(pauses.c.queue).scalar_subquery())
        """The condition a claim adds: the record's queue is not paused (a plain read, never a lock)."""
        self.sql_earliest = self.where_in(
            select(func.min(t.c.scheduled_at).label("earliest")).where(
                status_is(t.c.status, "pending"),
                or_(t.c.expires_at.is_(None), t.c.expires_at > bindparam("now")),
                self.unpaused,
            ),
            t.c.queue,
        )
        self.sql_resume = delete(pauses).where(pauses.c.queue == bindparam("queue_name"))
        self.sql_paused = select(pauses.c.queue, pauses.c.paused_at)
        workers = tables.workers
        self.sql_worker_delete = delete(workers).where(workers.c.id == bindparam("rid"))
        self.sql_worker_purge = delete(workers).where(workers.c.expires_at < bindparam("horizon"))
        self.sql_workers_live = (
            select(workers.c.info).where(workers.c.expires_at > bindparam("now")).order_by(workers.c.id)
        )
        locks = tables.locks
        self.sql_lock_release = delete(locks).where(
            locks.c.name == bindparam("lock_name"), locks.c.owner == bindparam("lease_owner")
        )
        self._finish_sql: dict[tuple[bool, bool, bool], Update] = {}

    # -- helpers -----------------------------------------------------------------------------------

    def _capped_counts(self, *, by_queue: bool) -> Select[Any]:
        """One row: ``n_<status>`` for every status, each counting at most ``:cap`` rows (of ``:queue_name``)."""
        t = self.tables.tasks
        counts = []
        for status in TaskStatus:
            rows: Select[Any] = select(literal_column("1").label("one")).where(status_is(t.c.status, status.value))
            if by_queue:
                rows = rows.where(t.c.queue == bindparam("queue_name"))
            limited = rows.limit(bindparam("cap")).subquery(f"c_{status.value}")
            counts.append(select(func.count()).select_from(limited).scalar_subquery().label(f"n_{status.value}"))
        return select(*counts)

    def where_in(self, statement: _S, column: ColumnElement[Any]) -> _S:
        """``statement`` restricted to rows whose ``column`` is in the list bound as ``values``."""
        return statement.where(column.in_(bindparam("values", expanding=True)))

    def decode(self, row: Mapping[str, Any] | RowMapping) -> TaskRecord:
        """Return the record of a tasks row."""
        return decode_task(cast("Mapping[str, Any]", row), self.codec)

    def encode(self, record: TaskRecord) -> dict[str, Any]:
        """Return the row of ``record`` as column values."""
        return dict(zip(TASK_COLUMNS, encode_task(record, self.codec), strict=True))

    def time(self, moment: datetime) -> Any:
        """The stored value of an aware moment."""
        return self.codec.time(moment)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection whose every statement commits by itself."""
        async with self.autocommit.connect() as connection:
            yield connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection in a transaction, committed when the block ends (rolled back if it raises)."""
        async with self.engine.begin() as connection:
            yield connection

    async def rows(self, statement: Any, params: dict[str, Any] | None = None) -> list[Any]:
        """Run one statement on its own and return its rows (mappings of column names to values)."""
        async with self.connect() as connection:
            return await self.run(connection, statement, params or {})

    async def run(self, connection: AsyncConnection | None, statement: Any, params: dict[str, Any]) -> list[Any]:
        """Run ``statement`` on ``connection`` (``None``: on its own, see :meth:`rows`) and return its rows (mappings
        of column names to values)."""
        if connection is None:
            return await self.rows(statement, params)
        result = await connection.execute(statement, params)
        return list(result.mappings()) if result.returns_rows else []

    async def execute(self, statement: Any, params: dict[str, Any] | None = None) -> int:
        """Run one statement on its own and return the number of rows it matched."""
        async with self.connect() as connection:
            result = await connection.execute(statement, params or {})
            return int(result.rowcount)

    def returning(self, statement: Update | Delete) -> Any:
        """``statement`` returning the changed task rows."""
        return statement.returning(*self.columns)

    def notifying(self, statement: Any, channel: str, column: str) -> tuple[Any, dict[str, Any]]:
        """Wrap a statement returning task rows so that each returned row notifies ``channel`` (PostgreSQL only)."""
        del channel, column
        return statement, {}

    async def update_returning(
        self, statement: Update, params: dict[str, Any], *, notify: tuple[str, str] | None = None
    ) -> list[TaskRecord]:
        """Run ``statement`` (an UPDATE) returning the changed records, notifying if asked."""
        wrapped: Any = self.returning(statement)
        if notify is not None:
            wrapped, extra = self.notifying(wrapped, *notify)
            params = {**params, **extra}
        return [self.decode(row) for row in await self.rows(wrapped, params)]

    # -- lifecycle ---------------------------------------------------------------------------------

    async def check_server(self) -> None:  # noqa: B027 - optional
        """Raise ``ConfigurationError`` if the server cannot run this family's statements."""

    async def close(self) -> None:  # noqa: B027 - optional
        """Give back what the store holds of the engine's pool (before the engine is disposed)."""

    # -- writing work ------------------------------------------------------------------------------

    @abstractmethod
    def inserter(self, connection: AsyncConnection | None) -> Inserter:
        """The inserter writing on ``connection``: the caller's inside their transaction, or what
        :meth:`enqueue_connection` yields."""

    @abstractmethod
    def enqueue_connection(self) -> Any:
        """An async context manager yielding the connection of an enqueue of the backend's own (``None``: each
        statement on its own)."""

    def is_deadlock(self, error: Exception) -> bool:
        """Whether ``error`` says the database chose the statement's transaction as a deadlock victim."""
        del error
        return False

    async def retrying(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``operation`` (one statement or a whole transaction of the backend's own) again when the database chose
        it as a deadlock victim: it was rolled back, so nothing of it applied."""
        return await retrying(operation, self.is_deadlock)

    async def enqueue(self, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        """Insert ``records`` deduplicating by id, then by active key; one outcome per input, in input order."""

        async def attempt() -> list[EnqueueOutcome]:
            async with self.enqueue_connection() as connection:
                return await enqueue_records(self.inserter(connection), records)

        return await self.retrying(attempt)

    async def get(self, record_id: str) -> TaskRecord | None:
        """Return the record with ``record_id``, or ``None``."""
        rows = await self.rows(self.sql_get, {"rid": record_id})
        return self.decode(rows[0]) if rows else None

    async def get_by_key(self, key: str) -> TaskRecord | None:
        """Return the active holder of ``key``, else the most recently created record with it."""
        rows = await self.rows(self.sql_get_by_key, {"key": key})
        return self.decode(rows[0]) if rows else None

    # -- claiming and running ----------------------------------------------------------------------

    @abstractmethod
    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_expires_at: datetime
    ) -> list[TaskRecord]:
        """Claim up to ``limit`` due records of ``queues`` and return them (in any order)."""

    def claim_params(self, owner: str, now: datetime, lease_expires_at: datetime) -> dict[str, Any]:
        """The parameters of a claim's SET list."""
        return {"lease_owner": owner, "now": self.time(now), "lease_until": self.time(lease_expires_at)}

    async def claim_record(
        self, record_id: str, *, owner: str, now: datetime, lease_expires_at: datetime
    ) -> TaskRecord | None:
        """Claim the pending record ``record_id`` whatever its ``scheduled_at``."""
        params = {"rid": record_id, **self.claim_params(owner, now, lease_expires_at)}
        records = await self.update_returning(self.sql_claim_record, params)
        return records[0] if records else None

    async def transfer(self, lease: Lease, *, owner: str, lease_expires_at: datetime) -> TaskRecord | None:
        """Hand the attempt held by ``lease`` to ``owner``; the record after the change, or ``None``."""
        params = {
            "rid": lease.record_id,
            "lease_owner": lease.owner,
            "lease_token": lease.token,
            "new_owner": owner,
            "lease_until": self.time(lease_expires_at),
        }
        records = await self.update_returning(self.sql_transfer, params)
        return records[0] if records else None

    def fences(self, leases: Sequence[Lease]) -> tuple[list[ColumnElement[bool]], dict[str, Any]]:
        """``id = … AND owner = … AND token = …`` of each lease (the ``n``-th binds ``in``, ``on``, ``tn``)."""
        t = self.tables.tasks
        params: dict[str, Any] = {}
        fences = []
        for position, lease in enumerate(leases):
            fences.append(
                and_(
                    t.c.id == bindparam(f"i{position}"),
                    t.c.owner == bindparam(f"o{position}"),
                    t.c.token == bindparam(f"t{position}"),
                )
            )
            params.update({f"i{position}": lease.record_id, f"o{position}": lease.owner, f"t{position}": lease.token})
        return fences, params

    def renew_statement(self, leases: Sequence[Lease]) -> tuple[Update, dict[str, Any]]:
        """The guarded UPDATE extending every lease whose fence matches."""
        t = self.tables.tasks
        fences, params = self.fences(leases)
        statement = (
            update(t)
            .where(status_is(t.c.status, "running"), or_(*fences))
            .values(lease_expires_at=bindparam("lease_until"))
        )
        return statement, params

    async def renew(self, leases: Sequence[Lease], *, lease_expires_at: datetime) -> dict[str, bool]:
        """Extend every lease whose fence matches; return ``{record_id: cancel_requested}`` for those."""
        t = self.tables.tasks
        held: dict[str, bool] = {}
        for start in range(0, len(leases), 200):
            statement, params = self.renew_statement(leases[start : start + 200])
            params["lease_until"] = self.time(lease_expires_at)
            rows = await self.rows(statement.returning(t.c.id, t.c.cancel_requested), params)
            held.update((row["id"], bool(row["cancel_requested"])) for row in rows)
        return held

    async def save_progress(self, updates: Sequence[tuple[Lease, str]]) -> None:
        """Set ``progress`` (JSON) of each running record whose fence matches: one guarded UPDATE per 200 updates.

        ``updates`` hold at most one update per fence (owner and token) of a record, so at most one of a record's
        updates matches it and the order of the ``CASE`` branches does not matter.
        """
        t = self.tables.tasks
        for start in range(0, len(updates), 200):
            chunk = updates[start : start + 200]
            fences, params = self.fences([lease for lease, _ in chunk])
            params.update({f"p{position}": progress for position, (_, progress) in enumerate(chunk)})
            values = case(*((fence, bindparam(f"p{position}")) for position, fence in enumerate(fences)))
            statement = update(t).where(status_is(t.c.status, "running"), or_(*fences)).values(progress=values)
            await self.execute(statement, params)

    def finish_statement(self, lease: Lease, outcome: Outcome, now: datetime) -> tuple[Update, dict[str, Any]]:
        """The guarded UPDATE applying ``outcome`` under ``lease``."""
        values = finish_values(outcome)
        statement = self._finish_sql.get(values.shape)
        if statement is None:
            statement = self._finish_sql[values.shape] = self._build_finish(*values.shape)
        return statement, finish_params(values, lease, now, self.time, _FINISH_BINDS)

    def _build_finish(self, terminal: bool, refund: bool, only_if_expired: bool) -> Update:
        t = self.tables.tasks
        bind = _FINISH_BINDS
        fence = [
            t.c.id == bindparam(bind.id),
            status_is(t.c.status, "running"),
            t.c.owner == bindparam(bind.owner),
            t.c.token == bindparam(bind.token),
        ]
        if only_if_expired:
            fence.append(t.c.lease_expires_at <= bindparam(bind.now))
        released = {"owner": null(), "lease_expires_at": null(), "cancel_requested": false()}
        if terminal:
            values: dict[str, Any] = {
                "status": bindparam(bind.status),
                "finished_at": bindparam(bind.now),
                "result": bindparam(bind.result),
                "error": bindparam(bind.error),
                "active_key": null(),
                **released,
            }
        else:
            # A cancel request wins over a retry: the record ends cancelled instead. cancel_requested is reset last
            # (the SET order is kept), because MySQL assigns from left to right and later expressions would see the
            # new value.
            cancelled = t.c.cancel_requested.is_(true())
            attempts = case((t.c.attempts > 0, t.c.attempts - 1), else_=0) if refund else t.c.attempts
            values = {
                "status": case((cancelled, literal_column("'cancelled'")), else_=literal_column("'pending'")),
                "finished_at": case((cancelled, bindparam(bind.now)), else_=t.c.finished_at),
                "active_key": case((cancelled, null()), else_=t.c.active_key),
                "scheduled_at": case((cancelled, t.c.scheduled_at), else_=bindparam(bind.scheduled_at)),
                "attempts": case((cancelled, t.c.attempts), else_=attempts),
                "error": bindparam(bind.error),
                **released,
            }
        return update(t).where(*fence).ordered_values(*values.items())

    def finish(
        self, lease: Lease, outcome: Outcome, *, now: datetime, claimed: TaskRecord | None = None
    ) -> Awaitable[TaskRecord | None]:
        """Apply ``outcome`` under ``lease``; the updated record, or ``None`` if the fence failed.

        An awaitable rather than a coroutine function, so that a family may hand out a future (a finish waiting for
        a shared statement then holds no frame).
        """
        return self.finish_alone(lease, outcome, now, claimed)

    async def finish_alone(
        self, lease: Lease, outcome: Outcome, now: datetime, claimed: TaskRecord | None
    ) -> TaskRecord | None:
        """One finish in one statement: returning only the id when ``claimed`` gives the finished record (terminal
        outcomes only: a retry may end cancelled)."""
        statement, params = self.finish_statement(lease, outcome, now)
        terminal = as_status(outcome.status) is not TaskStatus.PENDING
        notify = (self.channels[1], "id") if terminal else (self.channels[0], "queue")
        if claimed is not None and terminal:
            t = self.tables.tasks
            wrapped, extra = self.notifying(statement.returning(t.c.id, t.c.queue), *notify)
            rows = await self.rows(wrapped, {**params, **extra})
            return finished_record(claimed, outcome, now) if rows else None
        records = await self.update_returning(statement, params, notify=notify)
        return records[0] if records else None

    async def announce_finished(self, record_id: str) -> None:
        """Tell finish waiters in other processes that ``record_id`` became terminal (PostgreSQL NOTIFY)."""
        del record_id

    async def expired_leases(self, *, now: datetime, limit: int) -> list[TaskRecord]:
        """Return up to ``limit`` running records whose lease expired at ``now``."""
        rows = await self.rows(self.sql_expired_leases, {"now": self.time(now), "limit": limit})
        return [self.decode(row) for row in rows]

    # -- control -----------------------------------------------------------------------------------

    async def cancel(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Cancel a pending record or flag a running one; the record after the change."""
        params = {"rid": record_id, "now": self.time(now)}
        records = await self.update_returning(self.sql_cancel_pending, params, notify=(self.channels[1], "id"))
        if not records:
            records = await self.update_returning(self.sql_cancel_running, {"rid": record_id})
        return records[0] if records else await self.get(record_id)

    async def requeue(self, record_id: str, *, now: datetime) -> TaskRecord | None:
        """Put a failed, cancelled or expired record back to pending.

        Raises:
            DuplicateTaskError: Another active record holds the record's key.
        """
        params = {"rid": record_id, "now": self.time(now)}
        try:
            records = await self.update_returning(self.sql_requeue, params, notify=(self.channels[0], "queue"))
        except IntegrityError as error:
            raise requeue_refused(record_id) from error
        return records[0] if records else await self.get(record_id)

    @abstractmethod
    async def expire(self, *, now: datetime, limit: int) -> int:
        """Mark up to ``limit`` pending records with ``expires_at <= now`` as expired; return how many."""

    @abstractmethod
    async def prune(self, *, finished_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` terminal records finished before ``finished_before``; return how many."""

    def terminal_before(self) -> ColumnElement[bool]:
        """Terminal records finished before the bound ``before`` (what pruning deletes)."""
        t = self.tables.tasks
        return and_(status_in(t.c.status, _TERMINAL), t.c.finished_at < bindparam("before"))

    # -- reading -----------------------------------------------------------------------------------

    async def query(self, where: RecordFilter, *, limit: int, cursor: str | None) -> list[TaskRecord]:
        """Return up to ``limit`` records matching ``where`` with ids below ``cursor``, newest first."""
        t = self.tables.tasks
        statement = select(*self.columns)
        if where.status is not None:
            statement = statement.where(status_is(t.c.status, TaskStatus(where.status).value))
        if where.queue is not None:
            statement = statement.where(t.c.queue == where.queue)
        if where.task_name is not None:
            statement = statement.where(t.c.task_name == where.task_name)
        if cursor is not None:
            statement = statement.where(t.c.id < cursor)
        statement = statement.order_by(t.c.id.desc()).limit(limit)
        return [self.decode(row) for row in await self.rows(statement)]

    async def count_by_status(self, queue: str | None, limit: int | None = None) -> dict[str, int]:
        """Count records by status (absent statuses are missing), for one queue or all; with ``limit``, a status
        with more records counts ``limit + 1``."""
        if limit is not None:
            params: dict[str, Any] = {"cap": limit + 1}
            if queue is not None:
                params["queue_name"] = queue
            (row,) = await self.rows(self.sql_count_capped[queue is not None], params)
            return {status.value: int(row[f"n_{status.value}"]) for status in TaskStatus}
        if queue is None:
            rows = await self.rows(self.sql_count_all)
        else:
            rows = await self.rows(self.sql_count_queue, {"queue_name": queue})
        return {row["status"]: int(row["n"]) for row in rows}

    async def oldest_due(self, *, now: datetime, queue: str | None) -> datetime | None:
        """Return the ``scheduled_at`` of the oldest due pending record, for one queue or all."""
        params: dict[str, Any] = {"now": self.time(now)}
        if queue is None:
            rows = await self.rows(self.sql_oldest_all, params)
        else:
            params["queue_name"] = queue
            rows = await self.rows(self.sql_oldest_queue, params)
        return self.codec.read_optional_time(rows[0]["oldest"]) if rows else None

    async def earliest_pending(self, queues: Sequence[str], *, now: datetime) -> datetime | None:
        """Return the earliest ``scheduled_at`` among pending records of ``queues`` (paused ones left out) not
        expired at ``now``."""
        rows = await self.rows(self.sql_earliest, {"values": list(queues), "now": self.time(now)})
        return self.codec.read_optional_time(rows[0]["earliest"]) if rows else None

    async def status_of(self, record_id: str) -> str | None:
        """Return the stored status of ``record_id``, or ``None`` if it does not exist."""
        rows = await self.rows(self.sql_status, {"rid": record_id})
        return str(rows[0]["status"]) if rows else None

    # -- pausing queues ----------------------------------------------------------------------------

    async def pause_queue(self, queue: str, *, now: datetime) -> bool:
        """Insert the queue's pause row unless it exists; whether this call inserted it (the family's ``sql_pause``
        returns the row it inserted: psycopg reports no row count for an ``INSERT``)."""
        return bool(await self.rows(self.sql_pause, {"queue_name": queue, "paused_at": self.time(now)}))

    async def resume_queue(self, queue: str) -> bool:
        """Delete the queue's pause row; whether there was one."""
        return await self.execute(self.sql_resume, {"queue_name": queue}) > 0

    async def paused_queues(self) -> dict[str, datetime]:
        """Every pause row: queue to ``paused_at``."""
        rows = await self.rows(self.sql_paused)
        return {str(row["queue"]): self.codec.read_time(row["paused_at"]) for row in rows}

    # -- workers and locks -------------------------------------------------------------------------

    @abstractmethod
    async def upsert_worker(self, worker_id: str, info: str, expires_at: datetime) -> None:
        """Insert or replace the worker row."""

    async def purge_workers(self, horizon: datetime) -> None:
        """Delete worker rows that expired before ``horizon``."""
        await self.execute(self.sql_worker_purge, {"horizon": self.time(horizon)})

    async def delete_worker(self, worker_id: str) -> None:
        """Delete the worker row."""
        await self.execute(self.sql_worker_delete, {"rid": worker_id})

    async def live_workers(self, now: datetime) -> list[str]:
        """Return the stored info (JSON) of workers whose expiry is after ``now``, ordered by id."""
        return [str(row["info"]) for row in await self.rows(self.sql_workers_live, {"now": self.time(now)})]

    @abstractmethod
    async def acquire_lock(self, name: str, *, owner: str, expires_at: datetime, now: datetime) -> bool:
        """Take or renew lock ``name`` unless another owner holds it unexpired at ``now``."""

    async def release_lock(self, name: str, *, owner: str) -> None:
        """Delete lock ``name`` if ``owner`` holds it."""
        await self.execute(self.sql_lock_release, {"lock_name": name, "lease_owner": owner})


class ConflictSkippingInserter(Inserter):
    """``INSERT … ON CONFLICT DO NOTHING RETURNING id``: one statement for one record, one multi-row statement for
    many (on PostgreSQL with their notifications)."""

    __slots__ = ()

    store: ConflictSkippingStore

    async def insert_tasks(self, records: Sequence[TaskRecord]) -> set[str]:
        """Insert, skipping conflicts; the statements notify the queues that got work (PostgreSQL with
        notifications)."""
        store = self.store
        if len(records) == 1:
            params = store.encode(records[0])
            if store.notify:
                params["notify_channel"] = store.channels[0]
            found = await store.run(self.connection, store.sql_insert_one, params)
            return {row["id"] for row in found}
        return await store.insert_many(self.connection, records)


class ConflictSkippingStore(Store):
    """A family with ``INSERT … ON CONFLICT`` (PostgreSQL, SQLite): enqueues, worker upserts and lock takes are one
    statement each, and enqueues need no transaction of their own."""

    notify = False
    """Whether statements notify (PostgreSQL with ``listen_notify``)."""

    def on_conflict(self, insert: Callable[[Table], Any]) -> None:
        """Build the statements made of the family's ``insert`` construct (``postgresql.insert``, ``sqlite.insert``)."""
        t = self.tables.tasks
        self.sql_insert = insert(t).on_conflict_do_nothing().returning(t.c.id)
        self.sql_insert_one: Any = (
            insert(t)
            .values({name: bindparam(name) for name in TASK_COLUMNS})
            .on_conflict_do_nothing()
            .returning(t.c.id)
        )
        workers = self.tables.workers
        worker = insert(workers).values(id=bindparam("rid"), info=bindparam("info"), expires_at=bindparam("expires_at"))
        self.sql_worker_upsert = worker.on_conflict_do_update(
            index_elements=[workers.c.id],
            set_={"info": worker.excluded.info, "expires_at": worker.excluded.expires_at},
        )
        pauses = self.tables.pauses
        self.sql_pause = (
            insert(pauses)
            .values(queue=bindparam("queue_name"), paused_at=bindparam("paused_at"))
            .on_conflict_do_nothing(index_elements=[pauses.c.queue])
            .returning(pauses.c.queue)
        )
        locks = self.tables.locks
        lock = insert(locks).values(
            name=bindparam("lock_name"), owner=bindparam("lease_owner"), expires_at=bindparam("lock_until")
        )
        self.sql_lock_acquire = lock.on_conflict_do_update(
            index_elements=[locks.c.name],
            set_={"owner": lock.excluded.owner, "expires_at": lock.excluded.expires_at},
            where=(locks.c.owner == lock.excluded.owner) | (locks.c.expires_at <= bindparam("now")),
        ).returning(locks.c.owner)

    def inserter(self, connection: AsyncConnection | None) -> Inserter:
        """Insert on ``connection``: the same statements inside a caller's transaction (they raise no conflict)."""
        return ConflictSkippingInserter(self, connection)

    async def insert_many(self, connection: AsyncConnection | None, records: Sequence[TaskRecord]) -> set[str]:
        """Insert several records skipping conflicts (SQLAlchemy's batched multi-row form); the ids of those inserted
        (``connection``: see :meth:`run`)."""
        rows = [self.encode(record) for record in records]
        if connection is None:
            async with self.connect() as own:
                return {row[0] for row in await own.execute(self.sql_insert, rows)}
        return {row[0] for row in await connection.execute(self.sql_insert, rows)}

    def enqueue_connection(self) -> Any:
        """None: each statement of an enqueue runs and commits on its own (the deduplication needs no transaction
        around them), on PostgreSQL as the driver's statement where it has one (see :mod:`.native`)."""
        return nullcontext()

    async def upsert_worker(self, worker_id: str, info: str, expires_at: datetime) -> None:
        """``INSERT … ON CONFLICT DO UPDATE``."""
        params = {"rid": worker_id, "info": info, "expires_at": self.time(expires_at)}
        await self.execute(self.sql_worker_upsert, params)

    async def acquire_lock(self, name: str, *, owner: str, expires_at: datetime, now: datetime) -> bool:
        """One conditional upsert that returns a row only if ``owner`` holds the lock afterwards."""
        params = {"lock_name": name, "lease_owner": owner, "lock_until": self.time(expires_at), "now": self.time(now)}
        return bool(await self.rows(self.sql_lock_acquire, params))

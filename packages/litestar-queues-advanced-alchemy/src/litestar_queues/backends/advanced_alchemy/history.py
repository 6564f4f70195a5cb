"""The event history table through SQLAlchemy Core: inserts that skip stored ids, reads in history order (how a
page is read: :func:`litestar_queues.sql.events.query_event_page`), bounded oldest-first deletes.

The statements are the same on every family but for the insert (PostgreSQL binds each column as one array, so the
statement is the same for every batch, and stores a batch's progress in the same statement; SQLite skips conflicts;
MySQL/MariaDB turns a duplicate id into a no-op update) and the bounded delete (MySQL/MariaDB cannot ``LIMIT``
inside ``IN (subquery)``: it reads the ids, then deletes them, in one transaction; PostgreSQL joins the picked ids
back by primary key).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Select, String, Text, bindparam, delete, func, select, tuple_
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from litestar_queues.backends.advanced_alchemy.stores.base import Store
from litestar_queues.backends.advanced_alchemy.stores.postgres import PostgresStore
from litestar_queues.errors import UnsupportedOperation
from litestar_queues.events.envelope import QueueEvent
from litestar_queues.events.history import EventFilter, EventPosition
from litestar_queues.records import Lease
from litestar_queues.sql.events import EVENT_COLUMNS, EVENT_ORDER, EventRow, event_rows
from litestar_queues.sql.finishing import lease_arrays

__all__ = ("AlchemyEventStore",)

_ARRAY_TYPES: tuple[Any, ...] = (String(), TIMESTAMP(timezone=True), BigInteger(), String(), String(), String(), Text())
"""PostgreSQL: the element types of ``EVENT_COLUMNS`` bound as arrays."""
_ARRAY_NAMES = tuple(f"event_{column}" for column in EVENT_COLUMNS)
"""PostgreSQL: the names of those arrays (not the columns' own: an UPDATE in the same statement would take a parameter
named like one of its table's columns, ``id`` or ``queue``, as a value to set)."""


def _order(source: Any, newest_first: bool) -> list[Any]:
    """The history order over ``source``'s columns (descending with ``newest_first``)."""
    return [source.c[column].desc() if newest_first else source.c[column] for column in EVENT_ORDER]


class AlchemyEventStore:
    """Append, page through and prune the events table of one backend, on its store's connections."""

    __slots__ = ("_delete", "_insert", "_picked", "_store", "_table", "_with_progress", "combines_progress")

    def __init__(self, store: Store) -> None:
        self._store = store
        self._table = t = store.tables.events
        order = [t.c[column] for column in EVENT_ORDER]
        oldest = select(t.c.id).where(t.c.occurred_at < bindparam("before")).order_by(*order).limit(bindparam("limit"))
        self._picked: Select[Any] | None = None
        self._with_progress: Any = None
        if isinstance(store, PostgresStore):
            arrays = (
                func.unnest(
                    *(bindparam(name, type_=ARRAY(kind)) for name, kind in zip(_ARRAY_NAMES, _ARRAY_TYPES, strict=True))
                )
                .table_valued(*EVENT_COLUMNS)
                .render_derived(name="e")
            )
            self._insert: Any = (
                pg_insert(t)
                .from_select(list(EVENT_COLUMNS), select(*arrays.c))
                .on_conflict_do_nothing(index_elements=[t.c.id])
            )
            # The batch's progress in the same statement (the store's fenced progress update as a data-modifying
            # CTE, which runs to completion although the INSERT reads nothing from it): one round trip, one
            # transaction.
            self._with_progress = store.repeated(self._insert.add_cte(store.sql_save_progress.cte("progress")))
            store.repeated(self._insert)
            # The picked ids joined back by primary key: ``id IN (subquery)`` is planned as a hash join over the
            # whole table.
            picked = oldest.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
            self._delete: Any = delete(t).where(t.c.id == picked.c.id)
        elif store.family == "sqlite":
            self._insert = sqlite_insert(t).on_conflict_do_nothing(index_elements=[t.c.id])
            self._delete = delete(t).where(t.c.id.in_(oldest.scalar_subquery()))
        else:
            insert = mysql_insert(t)
            self._insert = insert.on_duplicate_key_update(id=insert.inserted.id)
            self._picked = oldest.with_for_update(skip_locked=True)
            self._delete = delete(t).where(t.c.id.in_(bindparam("ids", expanding=True)))
        self.combines_progress = self._with_progress is not None
        """PostgreSQL: events and progress in one statement; elsewhere one after the other
        (``QueueBackend.append_events_with_progress``)."""

    def _arrays(self, events: Sequence[QueueEvent]) -> dict[str, Any]:
        """PostgreSQL: the events' columns, each bound as one array."""
        rows = event_rows(events, self._store.time)
        return dict(zip(_ARRAY_NAMES, map(list, zip(*rows, strict=True)), strict=True))

    async def append_with_progress(self, events: Sequence[QueueEvent], progress: Sequence[tuple[Lease, str]]) -> None:
        """PostgreSQL: insert the events and set the progress of the running records whose fence matches, in one
        statement."""
        if self._with_progress is None:
            raise UnsupportedOperation("only PostgreSQL stores events and progress in one statement")
        params = {**self._arrays(events), **lease_arrays([lease for lease, _ in progress])}
        params["progress"] = [value for _, value in progress]
        await self._store.rows(self._with_progress, params)

    async def append(self, events: Sequence[QueueEvent]) -> None:
        """Insert the events whose ids are not stored (later copies of an id in ``events`` are skipped too)."""
        if self._with_progress is not None:  # PostgreSQL: one statement, a column per array parameter
            await self._store.rows(self._insert, self._arrays(events))
            return
        rows = event_rows(events, self._store.time)
        async with self._store.transaction() as connection:  # SQLAlchemy's batched multi-row inserts
            await connection.execute(self._insert, [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in rows])

    def _range(self, where: EventFilter, after: EventPosition | None, newest_first: bool) -> list[Any]:
        """The conditions of ``where``'s time range past ``after``."""
        t = self._table
        time = self._store.time
        conditions: list[Any] = []
        if where.since is not None:
            conditions.append(t.c.occurred_at >= time(where.since))
        if where.before is not None:
            conditions.append(t.c.occurred_at < time(where.before))
        if after is not None:
            position = tuple_(*(t.c[column] for column in EVENT_ORDER))
            bound = tuple_(time(after.occurred_at), after.sequence, after.id)
            conditions.append(position < bound if newest_first else position > bound)
        return conditions

    def _position(self, row: Any) -> EventPosition:
        return EventPosition(self._store.codec.read_time(row["occurred_at"]), int(row["seq"]), row["id"])

    async def select(
        self, where: EventFilter, *, after: EventPosition | None, limit: int, newest_first: bool, window: int | None
    ) -> list[EventRow]:
        """Matching rows in history order: one index range, or the matches of a window of the order index."""
        t = self._table
        conditions = self._range(where, after, newest_first)
        source: Any = t
        if window is not None:
            columns = (t.c.occurred_at, t.c.seq, t.c.id, t.c.event_type, t.c.queue, t.c.body)
            source = select(*columns).where(*conditions).order_by(*_order(t, newest_first)).limit(window).subquery("w")
            conditions = []
        for column, value in (("task_id", where.task_id), ("event_type", where.type), ("queue", where.queue)):
            if value is not None:
                conditions.append(source.c[column] == value)
        statement = (
            select(source.c.occurred_at, source.c.seq, source.c.id, source.c.body)
            .where(*conditions)
            .order_by(*_order(source, newest_first))
            .limit(limit)
        )
        return [EventRow(self._position(row), row["body"]) for row in await self._store.rows(statement)]

    async def window_end(
        self, where: EventFilter, *, after: EventPosition | None, newest_first: bool, window: int
    ) -> EventPosition | None:
        """The ``window``-th position past ``after`` in the time range, if another follows: one offset into the order
        index."""
        t = self._table
        statement = (
            select(t.c.occurred_at, t.c.seq, t.c.id)
            .where(*self._range(where, after, newest_first))
            .order_by(*_order(t, newest_first))
            .limit(2)
            .offset(window - 1)
        )
        rows = await self._store.rows(statement)
        return self._position(rows[0]) if len(rows) == 2 else None

    async def prune(self, *, occurred_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` events that occurred before ``occurred_before``, oldest first; return how many."""
        params = {"before": self._store.time(occurred_before), "limit": limit}
        picked = self._picked
        if picked is None:
            return await self._store.execute(self._delete, params)

        async def attempt() -> int:
            async with self._store.transaction() as connection:
                ids = [row[0] for row in await connection.execute(picked, params)]
                if not ids:
                    return 0
                return int((await connection.execute(self._delete, {"ids": ids})).rowcount)

        return await self._store.retrying(attempt)

"""The event history table: stored events as rows, read in ``(occurred_at, seq, id)`` order (how a page is read:
:func:`litestar_queues.sql.events.query_event_page`).

The statements are the same on every family but for the insert that skips stored ids (PostgreSQL binds each column
as one array, so the statement text is the same for every batch) and the bounded delete
(MySQL/MariaDB cannot ``LIMIT`` inside ``IN (subquery)`` and deletes with ``ORDER BY … LIMIT``; PostgreSQL joins
the picked ids back by primary key).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from litestar_queues.backends.sqlspec.database import Database
from litestar_queues.backends.sqlspec.dialects.base import chunked
from litestar_queues.backends.sqlspec.names import TableNames
from litestar_queues.errors import UnsupportedOperation
from litestar_queues.events.envelope import QueueEvent
from litestar_queues.events.history import EventFilter, EventPosition
from litestar_queues.records import Lease
from litestar_queues.sql.events import EVENT_COLUMNS, EVENT_ORDER, EventRow, event_rows
from litestar_queues.sql.finishing import lease_arrays
from litestar_queues.sql.rows import ValueCodec

__all__ = ("EventStore",)

_ROWS_PER_INSERT = 250
"""Rows per insert statement (seven parameters each, far below every driver's limit)."""
_PG_TYPES = ("varchar", "timestamptz", "bigint", "varchar", "varchar", "varchar", "text")
"""The PostgreSQL types of ``EVENT_COLUMNS``, for the arrays of the one-statement insert."""


class EventStore:
    """Append, page through and prune the events table of one backend."""

    __slots__ = (
        "_codec",
        "_db",
        "_delete",
        "_insert",
        "_insert_arrays",
        "_insert_suffix",
        "_table",
        "_with_progress",
        "combines_progress",
    )

    def __init__(self, db: Database, names: TableNames, codec: ValueCodec) -> None:
        self._db = db
        self._codec = codec
        self._table = events = names.events
        into = f"INSERT INTO {events} ({', '.join(EVENT_COLUMNS)})"
        self._insert = f"{into} VALUES"
        self._insert_arrays: str | None = None
        self._with_progress: str | None = None
        if names.family == "mysql":
            self._insert_suffix = " ON DUPLICATE KEY UPDATE id = id"
            self._delete = (
                f"DELETE FROM {events} WHERE occurred_at < :before "  # noqa: S608 - a quoted table name
                "ORDER BY occurred_at, seq, id LIMIT :limit"
            )
        elif names.family == "postgres":
            # The picked ids joined back by primary key: ``id IN (subquery)`` is planned as a hash join over the
            # whole table.
            self._insert_suffix = " ON CONFLICT (id) DO NOTHING"
            arrays = ", ".join(
                f"CAST(:{column} AS {kind}[])" for column, kind in zip(EVENT_COLUMNS, _PG_TYPES, strict=True)
            )
            self._insert_arrays = f"{into} SELECT * FROM unnest({arrays})"  # noqa: S608 - a quoted table name
            # The progress of the same batch in the same statement: one round trip, one transaction (the UPDATE runs
            # to completion although the INSERT reads nothing from it).
            self._with_progress = (
                f"WITH progress AS (UPDATE {names.tasks} AS t SET progress = l.progress "  # noqa: S608 - a quoted table name
                "FROM unnest(CAST(:ids AS varchar[]), CAST(:owners AS varchar[]), CAST(:tokens AS bigint[]), "
                "CAST(:progress AS text[])) AS l(id, owner, token, progress) "
                "WHERE t.id = l.id AND t.owner = l.owner AND t.token = l.token AND t.status = 'running') "
                f"{self._insert_arrays} ON CONFLICT (id) DO NOTHING"
            )
            self._delete = (
                f"WITH picked AS MATERIALIZED (SELECT id FROM {events} WHERE occurred_at < :before "  # noqa: S608 - a quoted table name
                "ORDER BY occurred_at, seq, id LIMIT :limit FOR UPDATE SKIP LOCKED) "
                f"DELETE FROM {events} AS e USING picked WHERE e.id = picked.id"
            )
        else:
            self._insert_suffix = " ON CONFLICT (id) DO NOTHING"
            self._delete = (
                f"DELETE FROM {events} WHERE id IN (SELECT id FROM {events} "  # noqa: S608 - a quoted table name
                "WHERE occurred_at < :before ORDER BY occurred_at, seq, id LIMIT :limit)"
            )

        self.combines_progress = self._with_progress is not None

    async def append_with_progress(self, events: Sequence[QueueEvent], progress: Sequence[tuple[Lease, str]]) -> None:
        """PostgreSQL: insert the events and set the progress of the running records whose fence matches, in one
        statement."""
        if self._with_progress is None:
            raise UnsupportedOperation("only PostgreSQL stores events and progress in one statement")
        rows = event_rows(events, self._codec.time)
        params: dict[str, Any] = dict(zip(EVENT_COLUMNS, map(list, zip(*rows, strict=True)), strict=True))
        params.update(lease_arrays([lease for lease, _ in progress]), progress=[value for _, value in progress])
        await self._db.execute(self._with_progress, params)

    async def append(self, events: Sequence[QueueEvent]) -> None:
        """Insert the events whose ids are not stored (later copies of an id in ``events`` are skipped too)."""
        rows = event_rows(events, self._codec.time)
        if self._insert_arrays is not None:  # PostgreSQL: one fixed statement, a column per array parameter
            columns = dict(zip(EVENT_COLUMNS, map(list, zip(*rows, strict=True)), strict=True))
            await self._db.execute(self._insert_arrays + self._insert_suffix, columns)
            return
        for chunk in chunked(rows, _ROWS_PER_INSERT):
            values: list[str] = []
            params: dict[str, Any] = {}
            for number, row in enumerate(chunk):
                names = [f"{column}{number}" for column in EVENT_COLUMNS]
                values.append(f"({', '.join(f':{name}' for name in names)})")
                params.update(zip(names, row, strict=True))
            sql = f"{self._insert} {', '.join(values)}{self._insert_suffix}"
            await self._db.execute(sql, params)

    def _range(
        self, where: EventFilter, after: EventPosition | None, newest_first: bool
    ) -> tuple[list[str], dict[str, Any]]:
        """The conditions (and their parameters) of ``where``'s time range past ``after``."""
        time = self._codec.time
        conditions: list[str] = []
        params: dict[str, Any] = {}
        if where.since is not None:
            conditions.append("occurred_at >= :since")
            params["since"] = time(where.since)
        if where.before is not None:
            conditions.append("occurred_at < :before")
            params["before"] = time(where.before)
        if after is not None:
            conditions.append(f"(occurred_at, seq, id) {'<' if newest_first else '>'} (:at, :seq, :id)")
            params.update(at=time(after.occurred_at), seq=after.sequence, id=after.id)
        return conditions, params

    async def select(
        self, where: EventFilter, *, after: EventPosition | None, limit: int, newest_first: bool, window: int | None
    ) -> list[EventRow]:
        """Matching rows in history order: one index range, or the matches of a window of the order index."""
        conditions, params = self._range(where, after, newest_first)
        matches: list[str] = []
        for column, value in (("task_id", where.task_id), ("event_type", where.type), ("queue", where.queue)):
            if value is not None:
                matches.append(f"{column} = :{column}")
                params[column] = value
        params["limit"] = limit
        direction = " DESC" if newest_first else ""
        order = ", ".join(f"{column}{direction}" for column in EVENT_ORDER)
        if window is None:
            source = self._table
            conditions += matches
        else:
            params["window"] = window
            scanned = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            source = (
                f"(SELECT occurred_at, seq, id, event_type, queue, body FROM {self._table}{scanned} "  # noqa: S608 - built here
                f"ORDER BY {order} LIMIT :window) AS w"
            )
            conditions = matches
        where_sql = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"SELECT occurred_at, seq, id, body FROM {source}{where_sql} ORDER BY {order} LIMIT :limit"  # noqa: S608 - built here
        read_time = self._codec.read_time
        return [
            EventRow(EventPosition(read_time(row["occurred_at"]), int(row["seq"]), row["id"]), row["body"])
            for row in await self._db.select(sql, params)
        ]

    async def window_end(
        self, where: EventFilter, *, after: EventPosition | None, newest_first: bool, window: int
    ) -> EventPosition | None:
        """The ``window``-th position past ``after`` in the time range, if another follows: one offset into the order
        index."""
        conditions, params = self._range(where, after, newest_first)
        params["skip"] = window - 1
        direction = " DESC" if newest_first else ""
        order = ", ".join(f"{column}{direction}" for column in EVENT_ORDER)
        where_sql = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"SELECT occurred_at, seq, id FROM {self._table}{where_sql} ORDER BY {order} LIMIT 2 OFFSET :skip"  # noqa: S608 - built here
        rows = await self._db.select(sql, params)
        if len(rows) < 2:
            return None
        row = rows[0]
        return EventPosition(self._codec.read_time(row["occurred_at"]), int(row["seq"]), row["id"])

    async def prune(self, *, occurred_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` events that occurred before ``occurred_before``, oldest first; return how many."""
        return await self._db.execute(self._delete, {"before": self._codec.time(occurred_before), "limit": limit})

"""SQLite (aiosqlite): every transition is one ``UPDATE … RETURNING`` statement.

A writing statement takes SQLite's database write lock before it reads anything, so one
``UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING …`` cannot hand a row to two claimers, even from different
processes sharing the file. (A ``SELECT`` followed by an ``UPDATE`` could: with the default driver settings the
read happens outside the write transaction.) SQLAlchemy leaves out ``FOR UPDATE`` on SQLite, and nothing here
needs it. Lock waits are bounded by the driver's busy timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import bindparam, null, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from litestar_queues.backends.advanced_alchemy.stores.base import ConflictSkippingStore, status_is
from litestar_queues.backends.advanced_alchemy.tables import QueueTables
from litestar_queues.records import TaskRecord
from litestar_queues.sql.rows import SQLiteValueCodec, check_sqlite_version

__all__ = ("SQLiteStore",)


class SQLiteStore(ConflictSkippingStore):
    """SQLite 3.35+."""

    family: ClassVar[str] = "sqlite"

    def __init__(self, engine: AsyncEngine, tables: QueueTables) -> None:
        """Build the statements."""
        super().__init__(engine, tables, SQLiteValueCodec())
        t = tables.tasks
        self.on_conflict(sqlite_insert)
        due = self.where_in(select(t.c.id).where(self.due, self.unpaused), t.c.queue).order_by(*self.due_order)
        self.sql_claim = (
            update(t)
            .where(t.c.id.in_(due.limit(bindparam("limit")).scalar_subquery()))
            .values(self.claim_values)
            .returning(*self.columns)
        )
        expiring = (
            select(t.c.id)
            .where(status_is(t.c.status, "pending"), t.c.expires_at <= bindparam("now"))
            .order_by(t.c.expires_at)
            .limit(bindparam("limit"))
        )
        self.sql_expire = (
            update(t)
            .where(t.c.id.in_(expiring.scalar_subquery()))
            .values(status="expired", finished_at=bindparam("now"), active_key=null())
        )
        pruned = select(t.c.id).where(self.terminal_before()).order_by(t.c.finished_at).limit(bindparam("limit"))
        self.sql_prune = t.delete().where(t.c.id.in_(pruned.scalar_subquery()))

    async def check_server(self) -> None:
        """Require SQLite 3.35+ (``RETURNING``).

        Raises:
            ConfigurationError: The Python build links an older SQLite library.
        """
        check_sqlite_version("Advanced Alchemy backend")

    async def claim(
        self, queues: Sequence[str], *, owner: str, limit: int, now: datetime, lease_expires_at: datetime
    ) -> list[TaskRecord]:
        """One ``UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING …`` under SQLite's write lock."""
        params: dict[str, Any] = {**self.claim_params(owner, now, lease_expires_at), "limit": limit}
        params["values"] = list(queues)
        return [self.decode(row) for row in await self.rows(self.sql_claim, params)]

    async def expire(self, *, now: datetime, limit: int) -> int:
        """Expire a bounded batch in one statement."""
        return await self.execute(self.sql_expire, {"now": self.time(now), "limit": limit})

    async def prune(self, *, finished_before: datetime, limit: int) -> int:
        """Delete a bounded batch of the oldest finished records in one statement."""
        return await self.execute(self.sql_prune, {"before": self.time(finished_before), "limit": limit})

"""One storage strategy per SQL family behind the :class:`~.base.Dialect` interface."""

from __future__ import annotations

from litestar_queues.backends.sqlspec.database import Database
from litestar_queues.backends.sqlspec.dialects.base import Dialect
from litestar_queues.backends.sqlspec.dialects.mysql import MySQLDialect
from litestar_queues.backends.sqlspec.dialects.postgres import PostgresDialect
from litestar_queues.backends.sqlspec.dialects.sqlite import SQLiteDialect
from litestar_queues.backends.sqlspec.names import TableNames

__all__ = ("Dialect", "MySQLDialect", "PostgresDialect", "SQLiteDialect", "create_dialect")


def create_dialect(db: Database, names: TableNames, *, notify: bool) -> Dialect:
    """Return the dialect of ``db``'s family (``notify`` applies to PostgreSQL only)."""
    if db.family == "postgres":
        return PostgresDialect(db, names, notify=notify)
    if db.family == "sqlite":
        return SQLiteDialect(db, names)
    return MySQLDialect(db, names)

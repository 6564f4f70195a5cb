"""An application's engine behind a pooler in transaction mode (PgBouncer): what the backend needs of it, and adds.

The engine is the application's, so the backend never changes its connect arguments; ``open()`` checks them (see
:mod:`litestar_queues.sql.pooler` for why each matters) and names the setting that is missing:

* psycopg: ``connect_args={"prepare_threshold": None}``.
* asyncpg: ``connect_args={"statement_cache_size": 0, "prepared_statement_cache_size": 0,
  "prepared_statement_name_func": lambda: ""}``. SQLAlchemy's asyncpg adapter prepares every statement it runs,
  under a generated name unless told otherwise, and caches it; an empty name makes it PostgreSQL's unnamed
  statement, which the next statement replaces, so nothing outlives the exchange on a server connection.

What it adds, on asyncpg: the backend's array types learned once per new connection, inside one transaction (a
pool ``connect`` event on the engine).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from litestar_queues.errors import ConfigurationError
from litestar_queues.sql.pooler import learn_array_types

__all__ = ("check_unprepared", "is_prepared_statement_error", "learn_arrays_on_connect", "unprepared_error")

_ASYNCPG_FIX = (
    'connect_args={"statement_cache_size": 0, "prepared_statement_cache_size": 0, '
    '"prepared_statement_name_func": lambda: ""}'
)


def _learn_arrays(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.run_async(learn_array_types)


def learn_arrays_on_connect(engine: AsyncEngine) -> None:
    """Have every new asyncpg connection of ``engine`` learn the backend's array types in one transaction (once per
    engine, however many backends share it)."""
    if not event.contains(engine.sync_engine, "connect", _learn_arrays):
        event.listen(engine.sync_engine, "connect", _learn_arrays)


_PREPARED_STATEMENT_STATES = frozenset({"42P05", "26000"})
"""SQLSTATEs of a named statement used on the wrong server connection (``duplicate_prepared_statement``,
``invalid_sql_statement_name``): an engine that prepares named statements fails its first statements with them."""


def unprepared_error(driver: str, where: str) -> ConfigurationError:
    """The error for an engine of ``driver`` that prepares named statements behind a transaction-mode pooler."""
    fix = 'connect_args={"prepare_threshold": None}' if driver == "psycopg" else _ASYNCPG_FIX
    msg = (
        f"{where} has pooler_mode='transaction' but its engine prepares named statements, which through a "
        f"transaction-mode pooler are used on another server connection than the one that prepared them: create it "
        f"with {fix}"
    )
    return ConfigurationError(msg)


def is_prepared_statement_error(error: BaseException) -> bool:
    """Whether ``error`` (the driver's) says a named prepared statement met the wrong server connection."""
    return getattr(error, "sqlstate", None) in _PREPARED_STATEMENT_STATES


async def check_unprepared(connection: AsyncConnection, where: str) -> None:
    """Require the engine of ``connection`` (PostgreSQL, asyncpg or psycopg) to prepare no named statements.

    Raises:
        ConfigurationError: It would, naming the ``connect_args`` that stop it.
    """
    raw = await connection.get_raw_connection()
    driver = connection.dialect.driver
    driver_connection: Any = raw.driver_connection
    if driver == "psycopg":
        if driver_connection.prepare_threshold is None:
            return
    else:  # SQLAlchemy's adapter and asyncpg keep these settings in private attributes
        adapter: Any = raw.dbapi_connection
        cache_size = getattr(getattr(driver_connection, "_stmt_cache", None), "get_max_size", lambda: 0)()
        name_func = getattr(adapter, "_prepared_statement_name_func", None)
        named = name_func is None or name_func() != ""
        if not cache_size and getattr(adapter, "_prepared_statement_cache", None) is None and not named:
            return
    raise unprepared_error(driver, where)

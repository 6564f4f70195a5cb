"""Sessions on a SQLSpec configuration with the transaction discipline every backend operation needs.

Each backend operation borrows one session from the SQLSpec pool and leaves no transaction open
behind it, whatever the application configured: an app-owned psycopg, asyncmy or sqlite config
without autocommit opens an implicit transaction with the first statement (on MySQL even a SELECT,
whose REPEATABLE READ snapshot would then hide later commits). So a session that is in a
transaction when the block ends is committed (or rolled back on error). The check reads driver
state locally, so autocommit connections pay no extra round trip.

On PostgreSQL, with a pool of more than one connection that the backend created itself (never the
application's), a few connections are kept between operations instead of going back to the pool: operations
then skip the pool (and asyncpg's reset round trip on release) and reuse warm server processes, about a third
of a single enqueue's time. An operation takes a kept connection when one is free and borrows from the pool
otherwise, so operations never wait for one. A connection whose operation failed goes back to the pool
(which discards broken ones); ``release_kept`` returns the kept ones before the pool closes. When a
connection fails (rather than a statement), or a kept one turns out closed, every kept connection goes back
to the pool: after a server restart they are all dead, and each would otherwise fail one operation with a
driver's internal error, long after the server is back.

On a SQLite file every statement runs on one shared connection of the backend's own instead (see ``native``);
sessions (migrations, an application's transaction) still come from the pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from typing import Any, Literal, TypeVar

from litestar_queues.backends.sqlspec.names import Family
from litestar_queues.backends.sqlspec.native import (
    AsyncpgRunner,
    NativeRunner,
    PsycopgRunner,
    SharedSQLiteConnection,
    connection_failed,
)
from litestar_queues.errors import ConfigurationError

__all__ = ("SUPPORTED_DRIVERS", "Database", "DriverName", "check_session", "detect_driver", "family_of")

_T = TypeVar("_T")

DriverName = Literal["asyncpg", "psycopg", "aiosqlite", "asyncmy"]

SUPPORTED_DRIVERS: dict[str, DriverName] = {
    "sqlspec.adapters.asyncpg": "asyncpg",
    "sqlspec.adapters.psycopg": "psycopg",
    "sqlspec.adapters.aiosqlite": "aiosqlite",
    "sqlspec.adapters.asyncmy": "asyncmy",
}
"""SQLSpec adapter packages this backend is tested against, by the driver they wrap."""

_FAMILIES: dict[DriverName, Family] = {
    "asyncpg": "postgres",
    "psycopg": "postgres",
    "aiosqlite": "sqlite",
    "asyncmy": "mysql",
}


def detect_driver(config: Any) -> DriverName:
    """Return the driver behind a SQLSpec adapter configuration.

    Raises:
        ConfigurationError: ``config`` is not an async configuration of a supported adapter.
    """
    module = type(config).__module__
    for package, driver in SUPPORTED_DRIVERS.items():
        if module == package or module.startswith(f"{package}."):
            if driver == "psycopg" and "Async" not in type(config).__name__:
                msg = "the SQLSpec backend needs PsycopgAsyncConfig, not the synchronous PsycopgSyncConfig"
                raise ConfigurationError(msg)
            return driver
    supported = ", ".join(
        ("AsyncpgConfig", "PsycopgAsyncConfig", "AiosqliteConfig", "AsyncmyConfig"),
    )
    msg = f"unsupported SQLSpec configuration {type(config).__qualname__} ({module}); use one of {supported}"
    raise ConfigurationError(msg)


def check_session(session: object, driver: DriverName) -> None:
    """Check that ``session`` is a SQLSpec driver session of ``driver``'s adapter (a transactional enqueue's).

    Raises:
        TypeError: It is not.
    """
    package = next(package for package, name in SUPPORTED_DRIVERS.items() if name == driver)
    module = type(session).__module__
    if not (module == package or module.startswith(f"{package}.")) or not hasattr(session, "select"):
        msg = (
            f"session= takes the application's SQLSpec driver session of the queue's {driver} adapter (the one whose "
            f"transaction the records join, e.g. from provide_session()), got {type(session).__qualname__}"
        )
        raise TypeError(msg)


def family_of(driver: DriverName) -> Family:
    """Return the SQL family a driver speaks."""
    return _FAMILIES[driver]


def _asyncpg_in_transaction(connection: Any) -> bool:
    return bool(connection.is_in_transaction())


def _psycopg_in_transaction(connection: Any) -> bool:
    return int(connection.info.transaction_status) != 0  # psycopg.pq.TransactionStatus.IDLE


def _aiosqlite_in_transaction(connection: Any) -> bool:
    return bool(connection.in_transaction)


def _asyncmy_in_transaction(connection: Any) -> bool:
    return bool(connection.get_transaction_status())


_IN_TRANSACTION: dict[DriverName, Callable[[Any], bool]] = {
    "asyncpg": _asyncpg_in_transaction,
    "psycopg": _psycopg_in_transaction,
    "aiosqlite": _aiosqlite_in_transaction,
    "asyncmy": _asyncmy_in_transaction,
}


_NATIVE_RUNNERS: dict[DriverName, type[NativeRunner]] = {"asyncpg": AsyncpgRunner, "psycopg": PsycopgRunner}
"""Drivers whose backend statements skip SQLSpec's statement pipeline (see ``native``)."""


class Database:
    """Borrow sessions from a SQLSpec configuration and end their transactions."""

    __slots__ = ("_in_transaction", "_keeping", "_kept", "_native", "_shared", "config", "driver", "family")

    def __init__(self, config: Any, driver: DriverName) -> None:
        """Wrap ``config`` (a SQLSpec async adapter configuration for ``driver``)."""
        self.config = config
        self.driver: DriverName = driver
        self.family: Family = family_of(driver)
        self._in_transaction = _IN_TRANSACTION[driver]
        self._native: NativeRunner | None = _NATIVE_RUNNERS[driver]() if driver in _NATIVE_RUNNERS else None
        self._keeping = 0
        self._kept: list[tuple[Any, AsyncExitStack]] = []
        self._shared: SharedSQLiteConnection | None = None

    async def share_connection(self) -> None:
        """SQLite file: from now on run every statement on one connection of its own (see the module docstring)."""
        if self._shared is None:  # a backend opened again keeps its connection
            self._shared = await SharedSQLiteConnection.open(self.config)

    @property
    def shared(self) -> bool:
        """Whether statements run on one shared connection (a SQLite file) rather than on pooled ones."""
        return self._shared is not None

    def keep_connections(self, most: int) -> None:
        """From now on keep up to ``most`` good connections for the next operations (see the module docstring)."""
        self._keeping = most

    async def release_kept(self) -> None:
        """Stop keeping connections and return the kept ones to the pool (before the pool closes); close the shared
        one."""
        self._keeping = 0
        await self._forget_kept()
        shared, self._shared = self._shared, None
        if shared is not None:
            await shared.close()

    async def _forget_kept(self, *failed: tuple[Any, AsyncExitStack]) -> None:
        """Return every kept connection (and ``failed`` ones) to the pool, which discards the broken ones."""
        kept, self._kept = self._kept, []
        for _, stack in (*failed, *kept):
            with suppress(Exception):
                await stack.aclose()

    def in_transaction(self, session: Any) -> bool:
        """Return whether ``session``'s connection has an open transaction (a local check, no round trip)."""
        return self._in_transaction(session.connection)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Any]:
        """Yield a SQLSpec driver session; commit what it left open, or roll back if the block raised."""
        async with self.config.provide_session() as session:
            try:
                yield session
            except BaseException:
                if self._in_transaction(session.connection):
                    with suppress(Exception):
                        await session.rollback()
                raise
            if self._in_transaction(session.connection):
                await session.commit()

    async def _run(
        self, runner: NativeRunner, call: Callable[[Any, str, dict[str, Any]], Awaitable[_T]], sql: str, params: Any
    ) -> _T:
        """``call(connection, sql, params)`` on a kept connection if one is free, else a pooled one; commit what it
        left open, or roll back if it raised."""
        held = self._kept.pop() if self._kept else None
        if held is not None and runner.closed(held[0]):  # the server ended it while it was kept: the others too
            await self._forget_kept(held)
            held = None
        if held is None:
            stack = AsyncExitStack()
            held = (await stack.enter_async_context(self.config.provide_connection()), stack)
        connection = held[0]
        try:
            result = await call(connection, sql, params or {})
            if runner.in_transaction(connection):
                await runner.end(connection, commit=True)
        except BaseException as error:
            broken = runner.closed(connection) or connection_failed(error)
            try:
                if not broken and runner.in_transaction(connection):
                    with suppress(Exception):
                        await runner.end(connection, commit=False)
            finally:
                await (self._forget_kept(held) if broken else held[1].aclose())
            raise
        if len(self._kept) < self._keeping:
            self._kept.append(held)
        else:
            await held[1].aclose()
        return result

    async def select(self, sql: str, params: Any = None, *, statement_config: Any = None) -> list[Any]:
        """Run one statement that returns rows (``:name`` parameters; on a shared SQLite connection also a sequence
        for ``?`` ones) in its own session.

        Rows map column names to values (dicts, asyncpg records or ``sqlite3.Row``).
        """
        shared = self._shared
        if shared is not None and statement_config is None:
            return await shared.select(sql, params or {})
        runner = self._native
        if runner is not None and statement_config is None:
            return list(await self._run(runner, runner.select, sql, params))
        async with self.session() as session:
            if statement_config is not None:
                rows: list[Any] = await session.select(sql, params, statement_config=statement_config)
            else:
                rows = await (session.select(sql, params) if params else session.select(sql))
            return rows

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> int:
        """Run one statement (``:name`` parameters) in its own session; return the number of rows it affected."""
        shared = self._shared
        if shared is not None:
            return await shared.execute(sql, params or {})
        runner = self._native
        if runner is not None:
            return await self._run(runner, runner.execute, sql, params)
        async with self.session() as session:
            result = await (session.execute(sql, params) if params else session.execute(sql))
            return int(result.rows_affected)

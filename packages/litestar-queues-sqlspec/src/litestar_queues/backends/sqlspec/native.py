"""PostgreSQL statements run straight on the driver connection that the SQLSpec pool lends.

SQLSpec's per-statement pipeline (parameter validation, conversion and type wrapping, result
shaping) costs about 130 µs for the 28-parameter enqueue statement on the machines this was
measured on: more than the database round trip itself, on the operations the queue makes most
(enqueue, claim, finish, renew). The backend's statements are fixed texts written for the driver,
so on asyncpg and psycopg each ``:name`` text is converted once to the driver's native placeholders
and executed with the driver's own API (asyncpg prepares and caches statements per connection;
psycopg prepares a statement after it ran five times). Connections still come from, and return
to, the SQLSpec configuration's pool.

A SQLite file gets one connection of the backend's own instead (:class:`SharedSQLiteConnection`), opened like the
configuration's pooled ones and shared by every operation: SQLite lets one connection write at a time, so a
pool's connections only queue for the file's write lock, each wait a busy-handler sleep of milliseconds. On the
shared connection, aiosqlite's thread runs the statements one after another, and each is one call on that thread
(``sqlite3`` binds ``:name`` parameters itself), a complete autocommit statement that leaves no transaction open,
so the operations of one process never wait for each other's locks.
"""

from __future__ import annotations

import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from sqlspec.exceptions import DeadlockError, SerializationConflictError, SQLSpecError, UniqueViolationError

from litestar_queues.sql.failures import connection_lost

__all__ = ("AsyncpgRunner", "NativeRunner", "PsycopgRunner", "SharedSQLiteConnection", "connection_failed")

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_MAPPED: dict[str, type[SQLSpecError]] = {
    "23505": UniqueViolationError,
    "40P01": DeadlockError,
    "40001": SerializationConflictError,
}
"""SQLSTATEs the dialects act on, raised as the SQLSpec exceptions the SQLSpec path raises for them."""


def connection_failed(error: BaseException) -> bool:
    """Whether ``error`` (a SQLSpec or driver error) says the connection failed rather than the statement
    (:func:`~litestar_queues.sql.failures.connection_lost`). A cancellation is neither."""
    if not isinstance(error, Exception):
        return False
    source = error.__cause__ if isinstance(error, SQLSpecError) and error.__cause__ is not None else error
    return connection_lost(getattr(source, "sqlstate", None))


def _reraise(error: Exception) -> NoReturn:
    """Raise a driver error the dialects act on as its SQLSpec exception, and any other as it is.

    (Called from a plain ``try``/``except`` at each statement: no context manager on the hot path.)
    """
    mapped = _MAPPED.get(str(getattr(error, "sqlstate", "") or ""))
    if mapped is None:
        raise error
    raise mapped(str(error)) from error


class NativeRunner(ABC):
    """Runs ``:name``-parameter statements on one driver's connections."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        """Create a runner with an empty statement cache."""
        self._cache: dict[str, tuple[str, tuple[str, ...]]] = {}

    def convert(self, sql: str) -> tuple[str, tuple[str, ...]]:
        """Return the native text of ``sql`` and the parameter names in binding order (cached)."""
        converted = self._cache.get(sql)
        if converted is None:
            converted = self._cache[sql] = self._convert(sql)
        return converted

    @abstractmethod
    def _convert(self, sql: str) -> tuple[str, tuple[str, ...]]: ...

    @abstractmethod
    async def select(self, connection: Any, sql: str, params: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
        """Run a statement that returns rows; each row maps column names to values."""

    @abstractmethod
    async def execute(self, connection: Any, sql: str, params: Mapping[str, Any]) -> int:
        """Run a statement; return the number of rows it affected."""

    @abstractmethod
    def closed(self, connection: Any) -> bool:
        """Whether the driver knows the connection is gone, or its pool took it back (local state, no round trip)."""

    @abstractmethod
    def in_transaction(self, connection: Any) -> bool:
        """Whether the connection has an open transaction (local state, no round trip)."""

    @abstractmethod
    async def end(self, connection: Any, *, commit: bool) -> None:
        """Commit or roll back the connection's open transaction."""


class AsyncpgRunner(NativeRunner):
    """``$1, $2, …`` placeholders (a repeated name reuses its number); ``Record`` rows."""

    __slots__ = ()

    def _convert(self, sql: str) -> tuple[str, tuple[str, ...]]:
        order: dict[str, int] = {}

        def number(match: re.Match[str]) -> str:
            return f"${order.setdefault(match.group(1), len(order) + 1)}"

        return _NAMED.sub(number, sql), tuple(order)

    async def select(self, connection: Any, sql: str, params: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
        """``Connection.fetch``: the statement is prepared once per connection."""
        text, names = self.convert(sql)
        try:
            rows: Sequence[Mapping[str, Any]] = await connection.fetch(text, *[params[name] for name in names])
        except Exception as error:
            _reraise(error)
        return rows

    async def execute(self, connection: Any, sql: str, params: Mapping[str, Any]) -> int:
        """``Connection.execute`` with arguments; the row count is the last number of the command tag."""
        text, names = self.convert(sql)
        try:
            tag: str = await connection.execute(text, *[params[name] for name in names])
        except Exception as error:
            _reraise(error)
        last = tag.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    def closed(self, connection: Any) -> bool:
        """``Connection.is_closed()``: true once the server's end of the socket was seen closing.

        A connection that broke is taken back by asyncpg's pool at once, and its proxy then refuses every call.
        """
        try:
            return bool(connection.is_closed())
        except Exception:  # asyncpg.InterfaceError: released back to the pool
            return True

    def in_transaction(self, connection: Any) -> bool:
        """asyncpg connections run in autocommit unless a transaction was started."""
        return bool(connection.is_in_transaction())

    async def end(self, connection: Any, *, commit: bool) -> None:
        """Send COMMIT or ROLLBACK."""
        await connection.execute("COMMIT" if commit else "ROLLBACK")


class PsycopgRunner(NativeRunner):
    """``%(name)s`` placeholders with a mapping of parameters; dictionary rows."""

    __slots__ = ()

    def _convert(self, sql: str) -> tuple[str, tuple[str, ...]]:
        names: dict[str, None] = {}

        def placeholder(match: re.Match[str]) -> str:
            names[match.group(1)] = None
            return f"%({match.group(1)})s"

        return _NAMED.sub(placeholder, sql.replace("%", "%%")), tuple(names)

    async def select(self, connection: Any, sql: str, params: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
        """A dict-row cursor on the connection."""
        from psycopg.rows import dict_row  # noqa: PLC0415 - optional driver

        text, _ = self.convert(sql)
        async with connection.cursor(row_factory=dict_row) as cursor:
            try:
                await cursor.execute(text, params)
            except Exception as error:
                _reraise(error)
            rows: Sequence[Mapping[str, Any]] = await cursor.fetchall()
            return rows

    async def execute(self, connection: Any, sql: str, params: Mapping[str, Any]) -> int:
        """A cursor's ``rowcount``."""
        text, _ = self.convert(sql)
        async with connection.cursor() as cursor:
            try:
                await cursor.execute(text, params)
            except Exception as error:
                _reraise(error)
            return int(cursor.rowcount)

    def closed(self, connection: Any) -> bool:
        """``closed`` or ``broken``."""
        return bool(connection.closed or connection.broken)

    def in_transaction(self, connection: Any) -> bool:
        """Any state but IDLE: a connection without autocommit opened a transaction with the statement."""
        return int(connection.info.transaction_status) != 0

    async def end(self, connection: Any, *, commit: bool) -> None:
        """``commit()`` or ``rollback()``."""
        await (connection.commit() if commit else connection.rollback())


_SQLITE_UNIQUE = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})


def _reraise_sqlite(error: sqlite3.Error) -> NoReturn:
    """Raise a busy database or a unique violation as the SQLSpec exception SQLSpec raises for it."""
    name = str(getattr(error, "sqlite_errorname", ""))
    if name.startswith("SQLITE_BUSY") or (isinstance(error, sqlite3.OperationalError) and "locked" in str(error)):
        raise DeadlockError(str(error)) from error
    if name in _SQLITE_UNIQUE:
        raise UniqueViolationError(str(error)) from error
    raise error


class SharedSQLiteConnection:
    """The one aiosqlite connection every operation of a backend on a SQLite file runs its statements on."""

    __slots__ = ("_connection", "_legacy")

    def __init__(self, connection: Any) -> None:
        """Take over ``connection`` (from the SQLSpec configuration's ``create_connection``), with rows by column
        name."""
        connection.row_factory = sqlite3.Row
        self._connection = connection
        self._legacy = connection.isolation_level is not None
        """Not autocommit (an application's configuration without ``isolation_level=None``): sqlite3 opens a
        transaction before a writing statement, which :meth:`_commit` ends."""

    async def _commit(self) -> None:
        if self._legacy and self._connection.in_transaction:
            await self._connection.commit()

    @classmethod
    async def open(cls, config: Any) -> SharedSQLiteConnection:
        """A new connection like the pooled ones of ``config``, whose ``timeout`` (sqlite3's busy timeout) it keeps:
        SQLSpec's pool sets 5 s on every connection, too short for processes queueing for one file."""
        shared = cls(await config.create_connection())
        timeout = config.connection_config.get("timeout")
        if timeout is not None:
            await shared.execute(f"PRAGMA busy_timeout = {round(float(timeout) * 1000)}", ())
        return shared

    async def select(self, sql: str, params: Any) -> list[Any]:
        """Run a statement returning rows (``sqlite3.Row``, by column name) in one call on aiosqlite's thread."""
        try:
            rows = list(await self._connection.execute_fetchall(sql, params))
        except sqlite3.Error as error:
            _reraise_sqlite(error)
        await self._commit()
        return rows

    async def execute(self, sql: str, params: Any) -> int:
        """Run a statement; the number of rows it changed."""
        try:
            cursor = await self._connection.execute(sql, params)
        except sqlite3.Error as error:
            _reraise_sqlite(error)
        changed = int(cursor.rowcount)
        await cursor.close()
        await self._commit()
        return changed

    async def close(self) -> None:
        """Close the connection."""
        await self._connection.close()

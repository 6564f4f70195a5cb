"""The PostgreSQL statements a busy worker repeats, run straight on the driver connection of a pooled connection.

SQLAlchemy's execution path (greenlet switch, compiled-cache lookup, parameter and result processing, the
asyncpg adapter's mutex) costs about 0.3 ms per statement on the machines this was measured on: as much as the
round trip of a claim or a batch of finishes. The statements the backend repeats most are fixed, so each is
compiled once by SQLAlchemy for the engine's dialect, and its SQL and parameter order are kept; executing one
binds the values (through the statement's own bind processors) and calls asyncpg's or psycopg's API on the
connection the engine's pool lends. Connections still come from, and return to, that pool, in autocommit: borrowed
as the pool's own connection (``AsyncEngine.raw_connection()``, whose checkout and return are a third of an
``AsyncConnection``'s), a few kept for at most a second between statements (see :mod:`.connections`).

SQLAlchemy's execution events (``before_cursor_execute``, and what builds on them: ``echo``, tracing) do not see
these statements; ``AdvancedAlchemyBackendConfig(native_statements=False)`` runs them through SQLAlchemy too.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter
from typing import Any, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ("NATIVE_DRIVERS", "NativeStatement")

NATIVE_DRIVERS = frozenset({"asyncpg", "psycopg"})
"""The drivers whose connections run the statements directly."""


class NativeStatement:
    """One statement compiled for a PostgreSQL driver: its SQL, default values and bind processors."""

    __slots__ = ("_ordered", "defaults", "order", "processors", "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = cast("SQLCompiler", statement.compile(dialect=dialect))
        self.sql = compiled.string
        self.defaults: dict[str, Any] = dict(compiled.params)
        """Values the statement binds itself (literals in SET lists, ``+ 1``): the caller's params add to them."""
        self.processors: dict[str, Any] = dict(compiled._bind_processors)
        self.order: tuple[str, ...] | None = tuple(compiled.positiontup or ()) if compiled.positional else None
        """Parameter names in placeholder order (asyncpg's ``$n``); ``None``: named parameters (psycopg)."""
        order = self.order or ()
        self._ordered = itemgetter(*order) if len(order) > 1 else lambda values: tuple(values[name] for name in order)

    def bind(self, params: Mapping[str, Any]) -> Any:
        """The driver's parameters for ``params``: a tuple in placeholder order, or a dict."""
        values = {**self.defaults, **params}
        for name, process in self.processors.items():
            if name in values:
                values[name] = process(values[name])
        if self.order is None:
            return values
        return self._ordered(values)

    async def rows(self, driver: Any, params: Mapping[str, Any]) -> list[Any]:
        """Run on ``driver`` (an asyncpg connection, or a psycopg one in autocommit); rows that map column names to
        values."""
        bound = self.bind(params)
        if self.order is not None:  # asyncpg
            return list(await driver.fetch(self.sql, *bound))
        cursor = driver.cursor(row_factory=_dict_row())  # psycopg
        try:
            await cursor.execute(self.sql, bound)
            return list(await cursor.fetchall()) if cursor.description is not None else []
        finally:
            await cursor.close()


def _dict_row() -> Any:
    from psycopg.rows import dict_row  # noqa: PLC0415 - only with psycopg

    return dict_row

"""The driver connections that native statements (see :mod:`.native`) run on, lent by the engine's pool.

A statement borrows the pool's own connection (``AsyncEngine.raw_connection()``), in autocommit, and gives it back
afterwards. Borrowing and giving back cost two greenlet switches into SQLAlchemy's pool (about 40 µs of event-loop
CPU per statement where this was measured; the statement's own driver call is about 50 µs), and a FIFO pool hands
out its least recently used connection, whose server process is the coldest. So, from a pool with room for it
(``QueuePool``), up to a few connections that just ran a statement without error are kept for the next ones, each
for at most one second after it left the pool: a kept connection goes back when a statement ends after that second,
or when a timer finds it unused, so a burst reuses them and an idle backend holds none after a second. The pool thus
still sees every connection (pre-ping, ``pool_recycle``, ``dispose()``) at least once a second, and never lends more
than ``pool_size // 2`` (at most four) of its connections to the queue between statements. ``NullPool`` and
``StaticPool`` engines (a pooler in front, tests) keep nothing.

A connection that failed (rather than its statement) is invalidated, and every other pooled one replaced, as
SQLAlchemy does when a statement it runs finds one (``dispose()``: the idle ones are closed and the pool is swapped
for a new one; connections checked out meanwhile are closed when their users give them back). After a server
restart they are all dead, and each would otherwise fail one more operation. Kept connections are dropped with it,
and one found closed when taken is too. A psycopg connection whose autocommit cannot be switched back (a statement
cancelled midway) is invalidated alone: the pool never gets it back changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool
from sqlalchemy.util import greenlet_spawn

from litestar_queues.sql.failures import connection_lost

__all__ = ("DriverConnections",)

KEPT_MOST = 4
"""Most connections kept between statements: a worker's claim, two finishes and an enqueue each find one."""
KEPT_SECONDS = 1.0
"""Longest time a kept connection stays out of the pool."""


class _Borrowed:
    """A pooled connection out of the pool: since when (event-loop time), and whether its autocommit was switched on
    (psycopg) and must be switched off before the pool gets it back."""

    __slots__ = ("pooled", "since", "switched")

    def __init__(self, pooled: Any, since: float, *, switched: bool) -> None:
        self.pooled = pooled
        self.since = since
        self.switched = switched


class DriverConnections:
    """Lends driver connections of ``engine``'s pool, in autocommit, one statement at a time (see the module)."""

    __slots__ = ("_engine", "_keeping", "_kept", "_psycopg", "_returning", "_sweeper")

    def __init__(self, engine: AsyncEngine) -> None:
        """Lend connections of ``engine``'s pool."""
        self._engine = engine
        self._psycopg = engine.dialect.driver == "psycopg"
        pool = engine.pool
        self._keeping = min(KEPT_MOST, pool.size() // 2) if isinstance(pool, QueuePool) else 0
        self._kept: list[_Borrowed] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self._returning: set[asyncio.Task[None]] = set()

    @property
    def kept(self) -> tuple[Any, ...]:
        """The driver connections kept out of the pool right now."""
        return tuple(borrowed.pooled.driver_connection for borrowed in self._kept)

    @asynccontextmanager
    async def borrow(self) -> AsyncIterator[Any]:
        """A driver connection for one statement: a kept one, or the pool's."""
        borrowed = await self._take_kept() or await self._take_pooled()
        try:
            yield borrowed.pooled.driver_connection
        except Exception as error:
            await self._give_back(borrowed, lost=connection_lost(getattr(error, "sqlstate", None)))
            raise
        except BaseException:  # cancelled midway: the pool decides what the connection is still worth
            await self._give_back(borrowed, lost=False)
            raise
        if len(self._kept) < self._keeping and asyncio.get_running_loop().time() - borrowed.since < KEPT_SECONDS:
            self._kept.append(borrowed)
            self._sweep_at(borrowed.since + KEPT_SECONDS)
        else:
            await self._give_back(borrowed, lost=False)

    async def close(self) -> None:
        """Keep nothing from now on, and give the kept connections back (before the engine is disposed)."""
        self._keeping = 0
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        kept, self._kept = self._kept, []
        await self._give_back_all(kept)
        if self._returning:
            await asyncio.gather(*self._returning, return_exceptions=True)

    async def _take_kept(self) -> _Borrowed | None:
        if not self._kept:
            return None
        borrowed = self._kept.pop()
        if not _closed(borrowed.pooled.driver_connection):
            return borrowed
        await self._drop_kept(borrowed)  # the server ended it while it was kept: the others too, most likely
        return None

    async def _take_pooled(self) -> _Borrowed:
        pooled = await self._engine.raw_connection()
        driver: Any = pooled.driver_connection
        switched = self._psycopg and not driver.autocommit  # asyncpg commits each statement by itself already
        borrowed = _Borrowed(pooled, asyncio.get_running_loop().time(), switched=switched)
        if switched:
            try:
                await driver.set_autocommit(True)
            except BaseException:
                await self._give_back(borrowed, lost=False)
                raise
        return borrowed

    async def _give_back(self, borrowed: _Borrowed, *, lost: bool) -> None:
        """Return ``borrowed`` to the pool; a lost one is invalidated and the pool replaced (see the module)."""
        broken = lost
        if borrowed.switched and not lost:
            try:
                await borrowed.pooled.driver_connection.set_autocommit(False)
            except Exception:  # any failure: the connection is not given back
                broken = True
        if not broken:
            await greenlet_spawn(borrowed.pooled.close)
            return
        with suppress(Exception):
            await greenlet_spawn(borrowed.pooled.invalidate)
        if lost:
            await self._drop_kept()
            await self._engine.dispose()

    async def _drop_kept(self, *found: _Borrowed) -> None:
        """Invalidate ``found`` and every kept connection (a dead server's)."""
        dropped, self._kept = [*found, *self._kept], []
        for borrowed in dropped:
            with suppress(Exception):
                await greenlet_spawn(borrowed.pooled.invalidate)

    async def _give_back_all(self, borrowed: Sequence[_Borrowed]) -> None:
        for one in borrowed:
            with suppress(Exception):
                await self._give_back(one, lost=False)

    def _sweep_at(self, when: float) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_at(when, self._sweep)

    def _sweep(self) -> None:
        """Give back the kept connections whose second is up; come back for the others."""
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        due = [borrowed for borrowed in self._kept if now - borrowed.since >= KEPT_SECONDS]
        if due:
            self._kept = [borrowed for borrowed in self._kept if now - borrowed.since < KEPT_SECONDS]
            task = asyncio.get_running_loop().create_task(self._give_back_all(due))
            self._returning.add(task)
            task.add_done_callback(self._returning.discard)
        if self._kept:
            self._sweep_at(min(borrowed.since for borrowed in self._kept) + KEPT_SECONDS)


def _closed(driver: Any) -> bool:
    """Whether the driver knows its connection is gone (local state, no round trip): asyncpg's ``is_closed()``,
    psycopg's ``closed`` or ``broken``."""
    is_closed = getattr(driver, "is_closed", None)
    if is_closed is not None:
        return bool(is_closed())
    return bool(driver.closed or driver.broken)

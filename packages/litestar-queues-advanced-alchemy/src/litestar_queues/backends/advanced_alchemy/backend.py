"""The Advanced Alchemy queue backend: the storage contract in the application's own SQLAlchemy database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, cast

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.pool import NullPool

from litestar_queues.backend import Capability
from litestar_queues.backends.advanced_alchemy.config import AdvancedAlchemyBackendConfig
from litestar_queues.backends.advanced_alchemy.engines import FAMILIES, engine_of
from litestar_queues.backends.advanced_alchemy.history import AlchemyEventStore
from litestar_queues.backends.advanced_alchemy.pooler import (
    check_unprepared,
    is_prepared_statement_error,
    learn_arrays_on_connect,
    unprepared_error,
)
from litestar_queues.backends.advanced_alchemy.stores.base import Store
from litestar_queues.backends.advanced_alchemy.stores.mysql import MySQLStore
from litestar_queues.backends.advanced_alchemy.stores.postgres import PostgresStore
from litestar_queues.backends.advanced_alchemy.stores.sqlite import SQLiteStore
from litestar_queues.backends.advanced_alchemy.tables import QueueTables
from litestar_queues.errors import BackendUnavailableError, ConfigurationError
from litestar_queues.records import EnqueueOutcome, TaskRecord
from litestar_queues.sql.backend import SQLQueueBackend
from litestar_queues.sql.enqueue import enqueue_records
from litestar_queues.sql.listener import ListenDriver, close_connection
from litestar_queues.sql.pooler import listens

__all__ = ("AdvancedAlchemyBackend",)

logger = logging.getLogger("litestar_queues.backends.advanced_alchemy")

_LISTEN_DRIVERS = frozenset({"asyncpg", "psycopg"})
_CALLBACKS_KEY = "litestar_queues.after_commit"
_CREATE_ATTEMPTS = 2 + 3 * 8
"""Tries of creating the tables: each failed one means another process created a table or index meanwhile."""


class _CommitCallbacks:
    """Callbacks waiting for the commit of a session's current transaction: one pair of listeners per session."""

    __slots__ = ("callbacks", "committed")

    def __init__(self, session: Session) -> None:
        self.callbacks: list[Callable[[], None]] = []
        self.committed = False
        event.listen(session, "after_commit", self._committed)
        event.listen(session, "after_transaction_end", self._ended)

    @classmethod
    def of(cls, session: Session) -> _CommitCallbacks:
        waiting = session.info.get(_CALLBACKS_KEY)
        if waiting is None:
            waiting = session.info[_CALLBACKS_KEY] = cls(session)
        return cast("_CommitCallbacks", waiting)

    def _committed(self, _session: Session) -> None:
        self.committed = True

    def _ended(self, _session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is not None:  # a savepoint ended, not the transaction
            return
        callbacks, committed = self.callbacks, self.committed
        self.callbacks, self.committed = [], False
        if committed:
            for callback in callbacks:
                callback()


class AdvancedAlchemyBackend(SQLQueueBackend):
    """Stores records in the application's SQLAlchemy database, through SQLAlchemy Core statements.

    Every state change is one guarded statement (PostgreSQL, SQLite) or one short transaction (MySQL/MariaDB),
    never the ORM's unit of work, so the fence decides atomically in the database and a concurrent change is never
    overwritten. Claims are one ``UPDATE`` with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, one ``UPDATE … RETURNING``
    under SQLite's write lock, and ``SELECT … FOR UPDATE SKIP LOCKED`` then ``UPDATE`` on MySQL/MariaDB.

    Declares ``TRANSACTIONAL_ENQUEUE``: :meth:`enqueue_within` writes in the caller's own ``AsyncSession`` (or
    ``AsyncConnection``) transaction; ``TRANSFER`` (remote execution targets); and ``EVENT_HISTORY`` (the events
    table). On PostgreSQL with asyncpg or
    psycopg and ``listen_notify`` it also declares ``PUSH_WAKEUP`` and ``FINISH_WAKEUP`` (one LISTEN connection,
    held from the first wait on).
    """

    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.TRANSACTIONAL_ENQUEUE, Capability.TRANSFER, Capability.EVENT_HISTORY}
    )
    name: ClassVar[str] = "advanced_alchemy"

    def __init__(self, config: AdvancedAlchemyBackendConfig) -> None:
        """Create an unopened backend for ``config`` (whose ``alchemy`` is set)."""
        self.config = config
        self.engine, self._dispose = engine_of(config.alchemy)
        self.tables: QueueTables = config.tables()
        family = FAMILIES[self.engine.dialect.name]
        listen_engine = (
            self.engine if config.listen_url is None else create_async_engine(config.listen_url, poolclass=NullPool)
        )
        notify = family == "postgres" and config.listen_notify and listen_engine.dialect.driver in _LISTEN_DRIVERS
        self._listen_engine = listen_engine
        self._listen_connections: dict[int, AsyncConnection] = {}
        self._pooled = family == "postgres" and config.pooler_mode == "transaction"
        if self._pooled and self.engine.dialect.driver == "asyncpg":
            learn_arrays_on_connect(self.engine)
        elif config.pooler_mode != "session" and family != "postgres":
            raise ConfigurationError(f"pooler_mode={config.pooler_mode!r} applies to PostgreSQL only, not {family}")
        self.store: Store
        if family == "postgres":
            self.store = PostgresStore(self.engine, self.tables, notify=notify, native=config.native_statements)
        elif family == "sqlite":
            self.store = SQLiteStore(self.engine, self.tables)
        else:
            self.store = MySQLStore(self.engine, self.tables)
        self.events = AlchemyEventStore(self.store)
        self.split_claims = family == "postgres"  # a claim there is a round trip: the next one overlaps a batch
        self.local_only = family == "sqlite"  # a file other machines cannot reach
        if notify and listens(config.pooler_mode, config.listen_url, self.where):
            self.listen(
                self._open_listen_connection,
                cast("ListenDriver", listen_engine.dialect.driver),
                wakeup_channel=self.store.channels[0],
                finish_channel=self.store.channels[1],
                close=self._close_listen_connection,
            )
        elif config.listen_url is not None and not notify:
            msg = (
                "listen_url is for PostgreSQL with asyncpg or psycopg (postgresql+asyncpg:// or postgresql+psycopg://)"
            )
            raise ConfigurationError(msg)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def open(self) -> None:
        """Reach the database, check the server, and create the missing tables with ``create_tables``; listening
        starts with the first wait.

        Raises:
            BackendUnavailableError: no answer within ``connect_timeout`` seconds, or the connection failed (refused,
                unknown host, authentication...); the message names the backend, the driver and the database (the
                password hidden) and the driver's reason.
            ConfigurationError: the server cannot run the backend, or, with ``pooler_mode="transaction"``, the engine
                prepares named statements.
        """
        await self._reach()
        await self.store.check_server()
        if self.config.create_tables:
            await self._create_tables()

    async def _reach(self) -> None:
        """One connection of the engine's pool and a ``SELECT 1``, within ``connect_timeout``: where an unreachable
        server shows, with the driver's own reason."""
        timeout = self.config.connect_timeout

        async def ping() -> None:
            async with self.engine.connect() as connection:
                await connection.exec_driver_sql("SELECT 1")
                if self._pooled:
                    await check_unprepared(connection, self.where)

        try:
            await asyncio.wait_for(ping(), timeout)
        except ConfigurationError:
            raise
        except Exception as exc:
            timed_out = isinstance(exc, asyncio.TimeoutError)
            source = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
            if self._pooled and is_prepared_statement_error(source):
                raise unprepared_error(self.engine.dialect.driver, self.where) from exc
            reason = (
                f"no answer within {timeout:g}s"
                if timed_out
                else " ".join(f"{type(source).__name__}: {source}".split())
            )
            raise BackendUnavailableError(f"{self.where} cannot be reached: {reason}") from exc

    @property
    def where(self) -> str:
        """The backend, driver and database, for messages: ``advanced_alchemy backend (asyncpg) at
        postgresql+asyncpg://u:***@h/db``."""
        url = self.engine.url.render_as_string(hide_password=True)
        return f"{self.name} backend ({self.engine.dialect.driver}) at {url}"

    async def _create_tables(self) -> None:
        """``CREATE TABLE`` (and indexes) for the missing tables. A process creating them at the same moment makes a
        try fail where both created the same table; the next try skips what the other made."""
        tables = list(self.tables.all)
        for attempt in range(1, _CREATE_ATTEMPTS + 1):
            try:
                async with self.engine.begin() as connection:
                    await connection.run_sync(self.tables.metadata.create_all, tables=tables, checkfirst=True)
            except DBAPIError:
                if attempt == _CREATE_ATTEMPTS:
                    raise
            else:
                return

    async def close(self) -> None:
        """Stop listening and wake every waiter; dispose the engine if it came from an Advanced Alchemy config."""
        await self.stop_listening()
        await self.store.close()
        if self._listen_engine is not self.engine:
            await self._listen_engine.dispose()
        if self._dispose:
            await self.engine.dispose()

    async def _open_listen_connection(self) -> Any:
        """A connection of the listen engine's pool, held for the listener: its driver connection."""
        connection = await self._listen_engine.connect()
        try:
            driver_connection = (await connection.get_raw_connection()).driver_connection
        except BaseException:
            await connection.close()
            raise
        self._listen_connections[id(driver_connection)] = connection
        return driver_connection

    async def _close_listen_connection(self, driver_connection: Any) -> None:
        """Close it (LISTEN and autocommit are driver-level state no other user of the pool may inherit)."""
        connection = self._listen_connections.pop(id(driver_connection), None)
        await close_connection(driver_connection)
        if connection is not None:
            await connection.invalidate()
            await connection.close()

    # -- enqueue inside the caller's transaction ---------------------------------------------------

    async def enqueue_within(self, session: object, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        """Insert ``records`` in the open transaction of ``session`` (an ``AsyncSession`` or ``AsyncConnection`` on
        this backend's database), deduplicating like :meth:`enqueue`; never commits.

        The records become claimable (and PostgreSQL's wakeups are delivered) when the caller commits; a rollback
        leaves no record and frees their keys.

        Raises:
            TypeError: ``session`` is not an ``AsyncSession`` or ``AsyncConnection``.
            ConfigurationError: ``session`` is on another database than the queue.
        """
        connection = await self._connection_of(session)
        if not records:
            return []
        return await enqueue_records(self.store.inserter(connection), records)

    def after_commit(self, session: object, callback: Callable[[], None]) -> bool:
        """Call ``callback`` once the current transaction of ``session`` commits (never if it rolls back).

        Only an ``AsyncSession`` tells when it commits; for anything else this returns ``False``.
        """
        if not isinstance(session, AsyncSession) or session.sync_session.get_transaction() is None:
            return False
        _CommitCallbacks.of(session.sync_session).callbacks.append(callback)
        return True

    async def _connection_of(self, session: object) -> AsyncConnection:
        if isinstance(session, AsyncSession):
            # The tasks table's INSERT as the clause: a routing session (read replicas) then binds the primary.
            connection = await session.connection(bind_arguments={"clause": self.tables.tasks.insert()})
        elif isinstance(session, AsyncConnection):
            connection = session
        else:
            msg = (
                "session= takes the SQLAlchemy AsyncSession (or AsyncConnection) whose transaction the records join, "
                f"got {type(session).__name__}"
            )
            raise TypeError(msg)
        if connection.engine.url != self.engine.url:
            msg = (
                f"session= is on {connection.engine.url!r}, the queue on {self.engine.url!r}: a transactional enqueue "
                "needs a session on the queue's own database"
            )
            raise ConfigurationError(msg)
        return connection

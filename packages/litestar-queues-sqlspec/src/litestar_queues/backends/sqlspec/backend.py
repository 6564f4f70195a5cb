"""The SQL queue backend: the storage contract on PostgreSQL, SQLite and MySQL/MariaDB through SQLSpec."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Sequence
from typing import ClassVar, cast

from litestar_queues.backend import Capability
from litestar_queues.backends.sqlspec.config import SQLSpecBackendConfig, describe_database
from litestar_queues.backends.sqlspec.database import Database, check_session, detect_driver, family_of
from litestar_queues.backends.sqlspec.dialects import Dialect, create_dialect
from litestar_queues.backends.sqlspec.dialects.sqlite import check_sqlite_location, memory_database
from litestar_queues.backends.sqlspec.history import EventStore
from litestar_queues.backends.sqlspec.migrate import SchemaMigrator, migration_extension_config
from litestar_queues.backends.sqlspec.names import TableNames
from litestar_queues.errors import BackendUnavailableError, ConfigurationError
from litestar_queues.records import EnqueueOutcome, TaskRecord
from litestar_queues.sql.backend import SQLQueueBackend
from litestar_queues.sql.listener import ListenDriver
from litestar_queues.sql.pooler import listens

__all__ = ("SQLSpecBackend",)

logger = logging.getLogger("litestar_queues.backends.sqlspec")

_KEPT_CONNECTIONS = 4
"""Most pooled connections kept between operations (PostgreSQL, own pool): a worker's claim, two finishes and a
heartbeat each find one."""


class SQLSpecBackend(SQLQueueBackend):
    """Stores records in SQL tables through a SQLSpec adapter configuration.

    Every transition of a running record is one guarded statement (PostgreSQL, SQLite) or one short
    transaction (MySQL/MariaDB), so the fence decides atomically in the database. Claims lock with
    ``FOR UPDATE SKIP LOCKED`` where the database has it and rely on SQLite's write lock otherwise.

    On PostgreSQL with ``listen_notify`` (the default) the instance declares ``PUSH_WAKEUP`` and
    ``FINISH_WAKEUP``: enqueues, retries and requeues NOTIFY the queue name, terminal transitions
    NOTIFY the record id, and one dedicated connection LISTENs from the first wait on. Elsewhere it
    declares neither and the core polls; so does a backend behind a transaction-mode pooler without
    ``direct_dsn`` (it still sends NOTIFY).

    Declares ``TRANSACTIONAL_ENQUEUE``: :meth:`enqueue_within` writes in the open transaction of the
    application's own SQLSpec driver session (same adapter and database).
    """

    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.TRANSFER, Capability.TRANSACTIONAL_ENQUEUE, Capability.EVENT_HISTORY}
    )
    """PostgreSQL with ``listen_notify`` adds push wakeups (set in ``__init__``)."""
    name: ClassVar[str] = "sqlspec"

    def __init__(self, config: SQLSpecBackendConfig) -> None:
        """Create an unopened backend for ``config``."""
        self.config = config
        sqlspec_config, self._owns_config = config.create_sqlspec_config()
        driver = detect_driver(sqlspec_config)
        family = family_of(driver)
        self.names = TableNames(config.table_prefix, family)
        self._db = Database(sqlspec_config, driver)
        notify = family == "postgres" and config.listen_notify
        self._dialect: Dialect = create_dialect(self._db, self.names, notify=notify)
        self.store = self._dialect
        self._migrator = SchemaMigrator(self._db, self._dialect, self.names, config.version_table)
        self.events = EventStore(self._db, self.names, self._dialect.codec)
        self.split_claims = family == "postgres"  # a claim there is a transaction: the next one overlaps a batch
        self.local_only = family == "sqlite"  # a file other machines cannot reach
        if notify and listens(config.pooler_mode or "session", config.listen_url, self.where):  # asyncpg or psycopg
            direct = config.direct_listen_config(driver)  # behind a transaction-mode pooler: the server itself
            connect = self._pool_like_connection if direct is None else direct.create_connection
            self.listen(
                connect,
                cast("ListenDriver", driver),
                wakeup_channel=self.names.wakeup_channel,
                finish_channel=self.names.finish_channel,
            )

    async def _pool_like_connection(self) -> object:
        """A new connection with the pool's parameters, outside the pool (its configuration looked up late: tests
        replace it)."""
        return await self._db.config.create_connection()

    @property
    def sqlspec_config(self) -> object:
        """The SQLSpec adapter configuration in use (the application's, or the one built from ``dsn``)."""
        return self._db.config

    # -- lifecycle ---------------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, check the server and bring the schema up to date (or check it is); listening starts with the
        first wait.

        Raises:
            BackendUnavailableError: no answer within ``connect_timeout`` seconds, or the connection failed (refused,
                unknown host, authentication...); the message names the backend, the driver and the database (the
                password redacted) and the driver's reason.
            ConfigurationError: the server cannot run the backend, or the schema is behind and may not be migrated.
        """
        await self._connect()
        await self._dialect.check_server()
        if self.config.apply_migrations:
            applied = await self._migrator.upgrade()
            if applied:
                logger.info("applied queue schema migrations %s", ", ".join(applied))
        else:
            pending = await self._migrator.pending()
            if pending:
                extension, _ = migration_extension_config(self.names.prefix)
                msg = (
                    f"the queue tables are missing migrations {pending}: run `sqlspec upgrade` with the "
                    f"{extension!r} extension (see migration_extension_config), or set apply_migrations=True"
                )
                raise ConfigurationError(msg)
        if self.names.family == "sqlite" and not memory_database(self._db.config):
            await self._db.share_connection()  # one writer per process (see native): never a pool's lock waits
            return
        pool_size = int(self._db.config.connection_config.get("max_size") or 2)
        if self._owns_config and pool_size > 1:  # never of the application's own pool, nor of a pool of one
            self._db.keep_connections(min(_KEPT_CONNECTIONS, pool_size - 1))

    async def _connect(self) -> None:
        """Open and close one connection outside the pool, within ``connect_timeout``: where an unreachable server
        shows, with the driver's own reason (a pool would retry in the background and only time out)."""
        if self.names.family == "sqlite":
            check_sqlite_location(self._db.config, self.where)
        timeout = self.config.connect_timeout
        try:
            connection = await asyncio.wait_for(self._db.config.create_connection(), timeout)
            closing = connection.close()
            if inspect.isawaitable(closing):
                await closing
        except Exception as exc:
            timed_out = isinstance(exc, asyncio.TimeoutError)
            reason = f"no answer within {timeout:g}s" if timed_out else " ".join(f"{type(exc).__name__}: {exc}".split())
            raise BackendUnavailableError(f"{self.where} cannot be reached: {reason}") from exc

    @property
    def where(self) -> str:
        """The backend, driver and database, for messages: ``sqlspec backend (asyncpg) at postgresql://u:***@h/db``."""
        return f"{self.name} backend ({self._db.driver}) at {describe_database(self.config, self._db.config)}"

    async def enqueue_within(self, session: object, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        """Insert ``records`` in the open transaction of ``session`` (the application's SQLSpec driver session on
        the queue's database, after ``await session.begin()``), deduplicating like :meth:`enqueue`; never commits.

        The records become claimable (and PostgreSQL's wakeups are delivered) when the caller commits; a rollback
        leaves no record and frees their keys. SQLSpec sessions do not tell when they commit, so ``task.enqueued``
        events are not published for these records.

        Raises:
            TypeError: ``session`` is not a SQLSpec driver session of the queue's adapter.
        """
        check_session(session, self._db.driver)
        if not records:
            return []
        return await self._dialect.enqueue_within(session, records)

    async def close(self) -> None:
        """Stop listening, wake every waiter, and close the pool if the backend created it."""
        await self.stop_listening()
        await self._db.release_kept()
        if self._owns_config:
            await self._db.config.close_pool()

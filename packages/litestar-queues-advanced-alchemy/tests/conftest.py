"""Backends over real databases through SQLAlchemy engines.

Most tests get fresh tables under a unique table prefix, dropped afterwards. The conformance suite (hundreds of
short tests per driver) shares one set of tables per driver and pytest process instead, emptied before each test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackend, AdvancedAlchemyBackendConfig, QueueTables
from litestar_queues.testing import server_url
from litestar_queues.testing.sql import closed_port, silent_port  # noqa: F401 - fixtures of the unreachable tests

DRIVERS = ("asyncpg", "psycopg", "aiosqlite", "asyncmy")


def unique_prefix() -> str:
    """A table prefix no other test uses."""
    return f"lqa{uuid.uuid4().hex[:10]}_"


PGBOUNCER = {"asyncpg+pgbouncer": "asyncpg", "psycopg+pgbouncer": "psycopg"}
"""Variants of the PostgreSQL drivers through the test PgBouncer (transaction pooling, ``LQ_PGBOUNCER_DSN``):
asyncpg LISTENs on a direct connection (``listen_url``), psycopg has none and polls."""

UNPREPARED_CONNECT_ARGS: dict[str, dict[str, Any]] = {
    "asyncpg": {"statement_cache_size": 0, "prepared_statement_cache_size": 0, "prepared_statement_name_func": str},
    "psycopg": {"prepare_threshold": None},
}
"""An engine's ``connect_args`` through a transaction-mode pooler (``str()`` is ``""``: the unnamed statement)."""


def pooler_settings(driver: str) -> dict[str, Any]:
    """The backend settings of a :data:`PGBOUNCER` variant (none for a plain driver)."""
    if driver not in PGBOUNCER:
        return {}
    if PGBOUNCER[driver] == "asyncpg":
        direct = server_url("LQ_POSTGRES_DSN").replace("postgresql://", "postgresql+asyncpg://", 1)
        return {"pooler_mode": "transaction", "listen_url": direct}
    return {"pooler_mode": "transaction"}


def database_url(driver: str, sqlite_path: Path) -> str:
    """The SQLAlchemy URL of the test database of ``driver`` (skips loudly, or fails on CI, without a server)."""
    if driver in PGBOUNCER:
        return server_url("LQ_PGBOUNCER_DSN").replace("postgresql://", f"postgresql+{PGBOUNCER[driver]}://", 1)
    if driver in ("asyncpg", "psycopg"):
        return server_url("LQ_POSTGRES_DSN").replace("postgresql://", f"postgresql+{driver}://", 1)
    if driver == "aiosqlite":
        return f"sqlite+aiosqlite:///{sqlite_path}"
    return server_url("LQ_MARIADB_DSN").replace("mysql://", "mysql+asyncmy://", 1)


def make_engine(url: str, **options: Any) -> AsyncEngine:
    """An engine with a small pool; SQLite files in WAL mode (readers and the writer do not block each other)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, **options)

        @event.listens_for(engine.sync_engine, "connect")
        def wal(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    options.setdefault("pool_size", 5)
    return create_async_engine(url, **options)


class BackendFactory:
    """Makes opened backends (each on its own engine) over one database and one table prefix, and cleans up.

    With ``shared=True`` the tables outlive the test (see ``shared_schemas``) and are emptied when the first backend
    opens; otherwise they are dropped when the factory closes.
    """

    def __init__(self, driver: str, url: str, *, shared: bool = False, prefix: str | None = None) -> None:
        self.driver = driver
        self.url = url
        self.shared = shared
        self.prefix = prefix or unique_prefix()
        self.metadata = MetaData()
        self.opened: list[AdvancedAlchemyBackend] = []
        self.engines: list[AsyncEngine] = []

    def engine(self, **options: Any) -> AsyncEngine:
        if self.driver in PGBOUNCER:
            options.setdefault("connect_args", UNPREPARED_CONNECT_ARGS[PGBOUNCER[self.driver]])
        engine = make_engine(self.url, **options)
        self.engines.append(engine)
        return engine

    def config(self, **settings: Any) -> AdvancedAlchemyBackendConfig:
        values: dict[str, Any] = {"table_prefix": self.prefix, "metadata": self.metadata, "create_tables": True}
        values.update(pooler_settings(self.driver))
        values.update(settings)
        values.setdefault("alchemy", self.engine())
        return AdvancedAlchemyBackendConfig(**values)

    async def open(self, **settings: Any) -> AdvancedAlchemyBackend:
        backend = self.config(**settings).create_backend()
        await backend.open()
        if self.shared and not self.opened:
            await empty_tables(backend)
        self.opened.append(backend)
        return backend

    async def close(self) -> None:
        if self.opened and not self.shared and self.driver != "aiosqlite":
            await drop_tables(self.opened[0].engine, self.opened[0].tables)
        for backend in reversed(self.opened):
            await backend.close()
        for engine in self.engines:
            await engine.dispose()


async def drop_tables(engine: AsyncEngine, tables: QueueTables) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(tables.metadata.drop_all, tables=list(tables.all), checkfirst=True)


async def empty_tables(backend: AdvancedAlchemyBackend) -> None:
    async with backend.engine.begin() as connection:
        for table in backend.tables.all:
            await connection.execute(table.delete())


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["asyncpg", "psycopg"])
def pg_driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def shared_schemas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One table prefix per pytest process for the shared-tables mode, dropped at the end of the session."""
    state: dict[str, Any] = {
        "prefix": unique_prefix(),
        "sqlite_path": tmp_path_factory.mktemp("shared-sqlite") / "queue.db",
        "urls": {},
    }
    yield state
    for driver, url in state["urls"].items():
        if driver != "aiosqlite":
            asyncio.run(_drop_shared(url, state["prefix"]))


async def _drop_shared(url: str, prefix: str) -> None:
    engine = make_engine(url)
    try:
        await drop_tables(engine, QueueTables(MetaData(), prefix=prefix))
    finally:
        await engine.dispose()


@pytest.fixture
async def make_factory(tmp_path: Path, shared_schemas: dict[str, Any]) -> AsyncIterator[Callable[..., BackendFactory]]:
    """``make_factory(driver, shared=False)``: a backend factory over ``driver``'s database."""
    factories: list[BackendFactory] = []

    def make(driver: str, *, shared: bool = False) -> BackendFactory:
        if shared:
            url = database_url(driver, shared_schemas["sqlite_path"])
            plain = PGBOUNCER.get(driver, driver)  # through the bouncer: the plain driver's tables, dropped directly
            shared_schemas["urls"][plain] = database_url(plain, shared_schemas["sqlite_path"])
            factory = BackendFactory(driver, url, shared=True, prefix=shared_schemas["prefix"])
        else:
            factory = BackendFactory(driver, database_url(driver, tmp_path / "queue.db"))
        factories.append(factory)
        return factory

    try:
        yield make
    finally:
        for factory in reversed(factories):
            await factory.close()

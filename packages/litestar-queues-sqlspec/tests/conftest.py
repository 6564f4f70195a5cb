"""Backends over real databases.

Most tests get fresh tables under a unique table prefix, dropped afterwards. The conformance suite
(hundreds of short tests per driver) shares one set of tables per driver and pytest process instead,
emptied before each test: creating tables is most of a short test's time (about 0.1 s on MariaDB).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from litestar_queues.backends.sqlspec import SQLSpecBackend, SQLSpecBackendConfig
from litestar_queues.testing import server_url
from litestar_queues.testing.sql import closed_port, silent_port  # noqa: F401 - fixtures of the unreachable tests

DRIVERS = ("asyncpg", "psycopg", "aiosqlite", "asyncmy")
SMALL_POOLS: dict[str, dict[str, Any]] = {
    "asyncpg": {"min_size": 1, "max_size": 10},
    "psycopg": {"min_size": 1, "max_size": 10},
    "aiosqlite": {},
    "asyncmy": {"minsize": 1, "maxsize": 10},
}
"""Tests open many short-lived backends; the drivers' default minimum pools (asyncpg: 10) cost more than the test."""
PGBOUNCER = {"asyncpg+pgbouncer": "asyncpg", "psycopg+pgbouncer": "psycopg"}
"""Variants of the PostgreSQL drivers through the test PgBouncer (transaction pooling, ``LQ_PGBOUNCER_DSN``):
asyncpg LISTENs on a direct connection (``direct_dsn``), psycopg has none and polls."""


def pooler_settings(driver: str) -> dict[str, Any]:
    """The backend settings of a :data:`PGBOUNCER` variant (none for a plain driver)."""
    if driver not in PGBOUNCER:
        return {}
    if PGBOUNCER[driver] == "asyncpg":
        return {"pooler_mode": "transaction", "direct_dsn": server_url("LQ_POSTGRES_DSN")}
    return {"pooler_mode": "transaction"}


def unique_prefix() -> str:
    """A table prefix no other test uses (the ``t`` keeps every segment non-numeric)."""
    return f"lqt{uuid.uuid4().hex[:10]}_"


def database_url(driver: str, sqlite_path: Path) -> str:
    """The URL of the test database of ``driver`` (skips loudly, or fails on CI, without a server)."""
    if driver in PGBOUNCER:
        return server_url("LQ_PGBOUNCER_DSN").replace("postgresql://", f"postgresql+{PGBOUNCER[driver]}://", 1)
    if driver == "asyncpg":
        return server_url("LQ_POSTGRES_DSN").replace("postgresql://", "postgresql+asyncpg://", 1)
    if driver == "psycopg":
        return server_url("LQ_POSTGRES_DSN").replace("postgresql://", "postgresql+psycopg://", 1)
    if driver == "aiosqlite":
        return f"sqlite:///{sqlite_path}"
    return server_url("LQ_MARIADB_DSN")


async def drop_tables(backend: SQLSpecBackend, version_table: str | None = None) -> None:
    """Drop the tables of ``backend``'s prefix (and a per-test version table)."""
    names = backend.names
    tables = [names.tasks_raw, names.workers_raw, names.locks_raw, names.pauses_raw, names.events_raw]
    if version_table is not None:
        tables.append(version_table)
    async with backend.sqlspec_config.provide_session() as session:  # type: ignore[attr-defined]
        for table in tables:
            await session.execute_script(f"DROP TABLE IF EXISTS {names.quote(table)}")


async def empty_tables(backend: SQLSpecBackend) -> None:
    """Delete every row of ``backend``'s tables."""
    names = backend.names
    async with backend.sqlspec_config.provide_session() as session:  # type: ignore[attr-defined]
        for table in (names.tasks, names.workers, names.locks, names.pauses, names.events):
            await session.execute(f"DELETE FROM {table}")
        if names.family != "postgres":
            await session.commit()


class BackendFactory:
    """Makes opened backends over one database and one table prefix, and cleans up after the test.

    With ``shared=True`` the tables outlive the test (see :func:`shared_schemas`) and are emptied
    when the first backend opens; otherwise they are dropped when the factory closes.
    """

    def __init__(self, driver: str, url: str, *, shared: bool = False, **settings: Any) -> None:
        self.driver = driver
        self.url = url
        self.shared = shared
        self.prefix = settings.pop("table_prefix", None) or unique_prefix()
        self.version_table = settings.pop("version_table", None) or f"{self.prefix}ddl"
        settings.setdefault("connection_options", SMALL_POOLS[PGBOUNCER.get(driver, driver)])
        settings = {**pooler_settings(driver), **settings}
        self.settings = settings
        self.opened: list[SQLSpecBackend] = []

    def config(self, **settings: Any) -> SQLSpecBackendConfig:
        merged = {"table_prefix": self.prefix, "version_table": self.version_table, **self.settings, **settings}
        return SQLSpecBackendConfig.from_url(self.url, **merged)

    async def open(self, **settings: Any) -> SQLSpecBackend:
        backend = self.config(**settings).create_backend()
        await backend.open()
        if self.shared and not self.opened:
            await empty_tables(backend)
        self.opened.append(backend)
        return backend

    async def close(self) -> None:
        if self.opened and not self.shared and not self.url.startswith("sqlite"):
            await drop_tables(self.opened[0], self.version_table)
        for backend in reversed(self.opened):
            await backend.close()


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
            asyncio.run(_drop_shared(BackendFactory(driver, url, table_prefix=state["prefix"])))


async def _drop_shared(factory: BackendFactory) -> None:
    backend = factory.config().create_backend()  # not opened: only its (lazily created) pool is used
    try:
        await drop_tables(backend, factory.version_table)
    finally:
        await backend.close()


@pytest.fixture
async def make_factory(tmp_path: Path, shared_schemas: dict[str, Any]) -> AsyncIterator[Callable[..., BackendFactory]]:
    """``make_factory(driver, shared=False, **settings)``: a backend factory over ``driver``'s database."""
    factories: list[BackendFactory] = []

    def make(driver: str, *, shared: bool = False, **settings: Any) -> BackendFactory:
        if shared:
            url = database_url(driver, shared_schemas["sqlite_path"])
            shared_schemas["urls"][driver] = url
            settings["table_prefix"] = shared_schemas["prefix"]
        else:
            url = database_url(driver, tmp_path / "queue.db")
        factory = BackendFactory(driver, url, shared=shared, **settings)
        factories.append(factory)
        return factory

    try:
        yield make
    finally:
        for factory in reversed(factories):
            await factory.close()


class ThrowawayPostgres:
    """A PostgreSQL server of our own (initdb on a free port) that a test may stop, crash and restart."""

    def __init__(self, bin_dir: str) -> None:
        import socket
        import tempfile

        self.bin_dir = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="lq-sqlspec-pg-", dir="/tmp"))  # traversable by the postgres user
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as_user: list[str] = []
        if os.geteuid() == 0:  # initdb and pg_ctl refuse to run as root
            shutil.chown(self.dir, "postgres", "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self.dir.chmod(0o755)
        self._run("initdb", "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _run(self, program: str, *args: str) -> None:
        command = [*self._as_user, str(Path(self.bin_dir) / program), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -h 127.0.0.1 -k {self.dir} -c fsync=off -c max_connections=100"
        self._run(
            "pg_ctl",
            "-D",
            str(self.dir / "data"),
            "-l",
            str(self.dir / "log"),
            "-w",
            "-t",
            "30",
            "-o",
            options,
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", mode, "-w", "-t", "30", "stop")

    def destroy(self) -> None:
        if (self.dir / "data" / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres(server_url("LQ_POSTGRES_BIN"))
    try:
        server.start()
        yield server
    finally:
        server.destroy()

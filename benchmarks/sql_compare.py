"""Our SQL backends on PostgreSQL (SQLSpec, Advanced Alchemy) side by side with pgqueuer, procrastinate and SAQ
(postgres), in one run.

Measures, for every system, with no-op tasks taking one int argument:

* single enqueue: sequential awaited enqueues of one job;
* bulk enqueue: the system's fastest way to enqueue many jobs, ``--bulk-size`` jobs per call (pgqueuer's list
  ``enqueue``, procrastinate's ``batch_defer_async``, ours ``enqueue_many``; SAQ has none: ``gather``);
* drain: jobs already queued, a worker with ``--concurrency`` slots started, time until the last one ran;
* idle pickup: an idle worker; time from the start of one enqueue to the start of the task function.

The single enqueues are also measured for two references that are no queue: one-column inserts, the commit floor;
and our own enqueue statement on a bare asyncpg connection, the same-work floor (what writing our record costs).

litestar-queues runs through its public ``QueueService`` and ``Worker`` with the SQLSpec backend on asyncpg
(and psycopg), and with the Advanced Alchemy backend on a SQLAlchemy engine of each driver (what an application's
``SQLAlchemyAsyncConfig`` holds). Each measurement gets a fresh database on a private PostgreSQL server (initdb on a
free port, default durability: every commit waits for its WAL flush), whose schema each system installs untimed. Each
number is the best of ``--rounds`` rounds, the systems interleaved within a round; peers run with their
defaults except concurrency.

Run (the peers are pinned in the benchmarks project, not in the workspace)::

    uv run --project benchmarks python benchmarks/sql_compare.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from harness import (
    TRACKER,
    LitestarQueuesSystem,
    Result,
    SaqSystem,
    System,
    add_round_arguments,
    cancel_task,
    free_port,
    import_available,
    opened_system,
    print_report,
    run_rounds,
)

PEERS = ("pgqueuer", "procrastinate", "saq", "asyncpg", "psycopg", "sqlspec", "sqlalchemy", "advanced-alchemy")


# -- litestar-queues -----------------------------------------------------------------------------------


class LitestarQueues(LitestarQueuesSystem):
    def __init__(self, driver: str) -> None:
        super().__init__(f"litestar-queues sqlspec {driver}")
        self.driver = driver

    def backend_config(self, location: str) -> Any:
        from litestar_queues.backends.sqlspec import SQLSpecBackendConfig

        url = location.replace("postgresql://", f"postgresql+{self.driver}://", 1)
        options = {"min_size": 2, "max_size": 60}
        return SQLSpecBackendConfig.from_url(url, table_prefix="bench_", connection_options=options)


class LitestarQueuesAlchemy(LitestarQueuesSystem):
    """The Advanced Alchemy backend on an application's engine, its pool as large as the SQLSpec backend's."""

    def __init__(self, driver: str) -> None:
        super().__init__(f"litestar-queues advanced-alchemy {driver}")
        self.driver = driver
        self.engine: Any = None

    def backend_config(self, location: str) -> Any:
        from sqlalchemy.ext.asyncio import create_async_engine

        from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackendConfig

        url = location.replace("postgresql://", f"postgresql+{self.driver}://", 1)
        self.engine = create_async_engine(url, pool_size=60, max_overflow=0)  # as many as the SQLSpec pool keeps
        return AdvancedAlchemyBackendConfig(alchemy=self.engine, table_prefix="bench_", create_tables=True)

    async def close(self) -> None:
        await super().close()
        await self.engine.dispose()  # the application's engine: the backend leaves it to its owner


# -- pgqueuer ------------------------------------------------------------------------------------------


class PgQueuer(System):
    name = "pgqueuer"

    async def open(self, dsn: str) -> None:
        import asyncpg
        from pgqueuer import AsyncpgDriver, Queries

        self.connection = await asyncpg.connect(dsn)
        self.worker_connection = await asyncpg.connect(dsn)
        self.queries = Queries(AsyncpgDriver(self.connection))
        await self.queries.install()
        self.task: asyncio.Task[Any] | None = None

    async def close(self) -> None:
        await self.connection.close()
        await self.worker_connection.close()

    async def enqueue(self, n: int) -> None:
        await self.queries.enqueue("noop", str(n).encode())

    async def enqueue_bulk(self, ns: Sequence[int]) -> None:
        await self.queries.enqueue(["noop"] * len(ns), [str(n).encode() for n in ns], [0] * len(ns))

    async def start_worker(self, concurrency: int) -> None:
        from pgqueuer import AsyncpgDriver, Queries, QueueManager

        self.manager = QueueManager(Queries(AsyncpgDriver(self.worker_connection)))

        @self.manager.entrypoint("noop")
        async def noop(job: Any) -> None:
            TRACKER.hit(int(job.payload))

        self.task = asyncio.create_task(self.manager.run(batch_size=concurrency))

    async def stop_worker(self) -> None:
        self.manager.shutdown.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(self.task, 10)  # type: ignore[arg-type]
        await cancel_task(self.task)


# -- procrastinate -------------------------------------------------------------------------------------


class Procrastinate(System):
    name = "procrastinate"

    async def open(self, dsn: str) -> None:
        import procrastinate

        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))

        @self.app.task(name="noop")
        async def noop(n: int) -> None:
            TRACKER.hit(n)

        self.noop = noop
        await self.app.open_async()
        await self.app.schema_manager.apply_schema_async()
        self.task: asyncio.Task[Any] | None = None

    async def close(self) -> None:
        await self.app.close_async()

    async def enqueue(self, n: int) -> None:
        await self.noop.defer_async(n=n)

    async def enqueue_bulk(self, ns: Sequence[int]) -> None:
        await self.noop.batch_defer_async(*({"n": n} for n in ns))

    async def start_worker(self, concurrency: int) -> None:
        self.task = asyncio.create_task(
            self.app.run_worker_async(concurrency=concurrency, install_signal_handlers=False, delete_jobs="always")
        )

    async def stop_worker(self) -> None:
        await cancel_task(self.task)


# -- the commit floor ----------------------------------------------------------------------------------


class CommitFloor(System):
    """A reference, not a queue: asyncpg inserting one int into a one-column table, one commit each.

    Every single enqueue here waits for its commit's WAL flush; this is how many such commits the server
    and disk allow one client, whatever the statement.
    """

    name = "bare INSERT (commit floor)"
    single_only = True

    async def open(self, dsn: str) -> None:
        import asyncpg

        self.connection = await asyncpg.connect(dsn)
        await self.connection.execute("CREATE TABLE floor (n integer)")

    async def close(self) -> None:
        await self.connection.close()

    async def enqueue(self, n: int) -> None:
        await self.connection.execute("INSERT INTO floor (n) VALUES ($1)", n)


class SameWorkFloor(System):
    """A reference, not a queue: our single-enqueue statement (the Advanced Alchemy backend's, compiled for asyncpg:
    the same row, indexes and ``pg_notify``) on one bare asyncpg connection, only a new id bound per call.

    What writing one of our records costs the server and the driver, without the queue's own Python: the floor of
    a single enqueue for this record, where the commit floor's one-integer row is the floor of any statement.
    """

    name = "our enqueue statement on bare asyncpg (same-work floor)"
    single_only = True

    async def open(self, dsn: str) -> None:
        import asyncpg
        from sqlalchemy.ext.asyncio import create_async_engine

        from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackendConfig
        from litestar_queues.backends.advanced_alchemy.stores.native import NativeStatement
        from litestar_queues.clock import utc_now
        from litestar_queues.records import TaskRecord, new_record_id

        engine = create_async_engine(dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
        config = AdvancedAlchemyBackendConfig(alchemy=engine, table_prefix="bench_", create_tables=True)
        backend = config.create_backend()
        try:
            await backend.open()  # the tables and indexes, as the backend makes them
            store: Any = backend.store
            statement = NativeStatement(store.sql_insert_one, engine.dialect)
            now = utc_now()
            record = TaskRecord(id=new_record_id(), task_name="bench.noop", args=[0], created_at=now, scheduled_at=now)
            self.values = list(statement.bind({**store.encode(record), "notify_channel": store.channels[0]}))
            self.sql = statement.sql
            self.position = (statement.order or ()).index("id")
        finally:
            await backend.close()
            await engine.dispose()
        self.new_id = new_record_id
        self.connection = await asyncpg.connect(dsn)

    async def close(self) -> None:
        await self.connection.close()

    async def enqueue(self, n: int) -> None:
        self.values[self.position] = self.new_id()
        await self.connection.fetch(self.sql, *self.values)


# -- the server and the measurements -------------------------------------------------------------------


def postgres_bin() -> str:
    configured = os.environ.get("LQ_POSTGRES_BIN")
    if configured:
        return configured
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name))
    if not candidates:
        raise SystemExit("no PostgreSQL binaries: set LQ_POSTGRES_BIN")
    return str(candidates[-1])


@contextlib.contextmanager
def private_server(bin_dir: str) -> Iterator[tuple[str, str]]:
    """initdb + start a throwaway server on a free port (as the postgres user when root); yield its base DSN."""
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="lq-bench-pg-", dir="/tmp"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    directory.chmod(0o755)
    data = str(directory / "data")
    run = [*as_user, f"{bin_dir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"]
    subprocess.run(run, check=True, capture_output=True)
    options = f"-p {port} -h 127.0.0.1 -k {directory} -c max_connections=300"
    ctl = [*as_user, f"{bin_dir}/pg_ctl", "-D", data, "-l", str(directory / "log"), "-w"]
    subprocess.run([*ctl, "-o", options, "start"], check=True, capture_output=True)
    try:
        version = subprocess.run(
            [f"{bin_dir}/postgres", "--version"], check=False, capture_output=True, text=True
        ).stdout
        yield f"postgresql://postgres@127.0.0.1:{port}", version.strip()
    finally:
        subprocess.run([*ctl, "-m", "immediate", "stop"], check=False, capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)


class Databases:
    """A fresh database per measurement."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.counter = 0

    @contextlib.asynccontextmanager
    async def fresh(self) -> AsyncIterator[str]:
        import asyncpg

        self.counter += 1
        name = f"bench_{os.getpid()}_{self.counter}"
        admin = await asyncpg.connect(f"{self.base}/postgres")
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
            try:
                yield f"{self.base}/{name}"
            finally:
                await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def opened(system: System, databases: Databases) -> AsyncIterator[System]:
    async with databases.fresh() as dsn, opened_system(system, dsn):
        yield system


def available_systems(names: Sequence[str]) -> list[System]:
    factories: dict[str, Callable[[], System]] = {
        "litestar-queues-asyncpg": lambda: LitestarQueues("asyncpg"),
        "litestar-queues-psycopg": lambda: LitestarQueues("psycopg"),
        "litestar-queues-alchemy-asyncpg": lambda: LitestarQueuesAlchemy("asyncpg"),
        "litestar-queues-alchemy-psycopg": lambda: LitestarQueuesAlchemy("psycopg"),
        "pgqueuer": PgQueuer,
        "procrastinate": Procrastinate,
        "saq": lambda: SaqSystem("saq (postgres)"),
        "floor": CommitFloor,
        "same-work": SameWorkFloor,
    }
    modules = {"pgqueuer": "pgqueuer", "procrastinate": "procrastinate", "saq": "saq"}
    return import_available(names, factories, modules)


async def run(arguments: argparse.Namespace, base: str) -> list[Result]:
    databases = Databases(base)
    return await run_rounds(
        available_systems(arguments.systems), lambda system: partial(opened, system, databases), arguments
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres-bin", default=None, help="PostgreSQL bin dir (default $LQ_POSTGRES_BIN)")
    parser.add_argument("--dsn", help="use this server (postgresql://user@host:port, no database) instead")
    add_round_arguments(parser)
    systems = [
        "litestar-queues-asyncpg",
        "litestar-queues-psycopg",
        "litestar-queues-alchemy-asyncpg",
        "litestar-queues-alchemy-psycopg",
        "pgqueuer",
        "procrastinate",
        "saq",
        "floor",
        "same-work",
    ]
    parser.add_argument("--systems", nargs="+", default=systems)
    arguments = parser.parse_args()
    ours = (
        "litestar-queues sqlspec asyncpg",
        "litestar-queues sqlspec psycopg",
        "litestar-queues advanced-alchemy asyncpg",
        "litestar-queues advanced-alchemy psycopg",
    )
    if arguments.dsn:
        results = asyncio.run(run(arguments, arguments.dsn.rstrip("/")))
        server = arguments.dsn
    else:
        with private_server(arguments.postgres_bin or postgres_bin()) as (base, version):
            results = asyncio.run(run(arguments, base))
            server = version
    print_report(arguments, server, PEERS, results, ours, references=(CommitFloor.name, SameWorkFloor.name))


if __name__ == "__main__":
    main()

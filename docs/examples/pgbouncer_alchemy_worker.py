"""The Advanced Alchemy backend through PgBouncer in transaction pooling mode: a worker and an enqueue.

The application's engine goes through the bouncer and prepares no named statements; only the worker's LISTEN
connection goes to the server itself (``listen_url``), so new work still wakes the worker at once. Without
``QUEUE_DIRECT_URL`` the worker polls.

    QUEUE_DATABASE_URL=postgresql+asyncpg://app@pgbouncer:6432/app \\
    QUEUE_DIRECT_URL=postgresql+asyncpg://app@db:5432/app uv run python docs/examples/pgbouncer_alchemy_worker.py

The test suite runs it against the PgBouncer of ``scripts/servers.sh``.
"""

from __future__ import annotations

import asyncio
import os

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from litestar_queues import Capability, QueueConfig, QueueService, Worker, WorkerConfig, task
from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackendConfig


@task("pgbouncer.multiply")
async def multiply(a: int, b: int) -> int:
    return a * b


def application_engine() -> AsyncEngine:
    """The application's engine, through the bouncer, preparing no named statements."""
    return create_async_engine(
        os.environ["QUEUE_DATABASE_URL"],
        connect_args={
            "statement_cache_size": 0,  # asyncpg's own cache of named statements
            "prepared_statement_cache_size": 0,  # SQLAlchemy's
            "prepared_statement_name_func": lambda: "",  # the unnamed statement: never left on a server connection
        },
    )


def queue_config(engine: AsyncEngine) -> QueueConfig:
    backend = AdvancedAlchemyBackendConfig(
        alchemy=engine,
        pooler_mode="transaction",  # nothing LISTENs through the bouncer; open() checks the engine's settings
        listen_url=os.environ.get("QUEUE_DIRECT_URL"),  # the server itself, for LISTEN only
        table_prefix=os.environ.get("QUEUE_TABLE_PREFIX", "litestar_queues_"),
        create_tables=True,  # a quick start: migrate with Alembic in an application
    )
    return QueueConfig(queue_backend=backend, in_app_worker=False, worker=WorkerConfig(concurrency=4))


async def main() -> int:
    engine = application_engine()
    try:
        result = await run(engine)
    finally:
        await engine.dispose()  # the application's engine: the backend leaves it open
    assert result == 42
    return result


async def run(engine: AsyncEngine) -> int:
    async with QueueService(queue_config(engine)) as service:
        pushed = Capability.PUSH_WAKEUP in service.backend.capabilities
        print(
            "wakeups:",
            "LISTEN on the direct connection" if pushed else f"polling every {service.config.worker.poll_interval:g} s",
        )
        worker = Worker(service)
        await worker.start()
        outcome = await service.enqueue(multiply, 6, 7)
        result = await service.result(outcome.id, timeout=30)
        print("6 * 7 =", result)
        await worker.stop()
    return int(result)


if __name__ == "__main__":
    asyncio.run(main())

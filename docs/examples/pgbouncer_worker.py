"""A worker and the code that enqueues, both through PgBouncer in transaction pooling mode.

Every statement goes through the bouncer; only the worker's LISTEN connection goes to the server itself
(``direct_dsn``), so new work still wakes the worker at once. Without ``QUEUE_DIRECT_URL`` the worker polls.

    QUEUE_DATABASE_URL=postgresql://app@pgbouncer:6432/app QUEUE_DIRECT_URL=postgresql://app@db:5432/app \\
        uv run python docs/examples/pgbouncer_worker.py

The test suite runs it against the PgBouncer of ``scripts/servers.sh``.
"""

from __future__ import annotations

import asyncio
import os

from litestar_queues import Capability, QueueConfig, QueueService, Worker, WorkerConfig, task
from litestar_queues.backends.sqlspec import SQLSpecBackendConfig


@task("pgbouncer.add")
async def add(a: int, b: int) -> int:
    return a + b


def queue_config() -> QueueConfig:
    backend = SQLSpecBackendConfig.from_url(
        os.environ["QUEUE_DATABASE_URL"],  # the bouncer
        pooler_mode="transaction",  # no named prepared statements, nothing LISTENs through the bouncer
        direct_dsn=os.environ.get("QUEUE_DIRECT_URL"),  # the server itself, for LISTEN only
        table_prefix=os.environ.get("QUEUE_TABLE_PREFIX", "litestar_queues_"),
    )
    return QueueConfig(queue_backend=backend, in_app_worker=False, worker=WorkerConfig(concurrency=4))


async def main() -> int:
    async with QueueService(queue_config()) as service:
        pushed = Capability.PUSH_WAKEUP in service.backend.capabilities
        print(
            "wakeups:",
            "LISTEN on the direct connection" if pushed else f"polling every {service.config.worker.poll_interval:g} s",
        )
        worker = Worker(service)
        await worker.start()
        outcome = await service.enqueue(add, 2, 3)
        result = await service.result(outcome.id, timeout=30)
        print("2 + 3 =", result)
        await worker.stop()
    assert result == 5
    return result


if __name__ == "__main__":
    asyncio.run(main())

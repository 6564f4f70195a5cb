"""A worker across a real outage of its server (a private one, stopped and started again): work that finished while
the server was down is written when it is back, and runs once."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import anyio
import pytest
from chaos_app import backend_config
from servers import private_server

from litestar_queues import QueueConfig, QueueService, TaskRegistry, TaskStatus, Worker, WorkerConfig, task
from litestar_queues.clock import utc_now

pytestmark = pytest.mark.anyio

JOBS = 5


@pytest.mark.parametrize("backend", ["redis", "valkey", "postgres", "advanced-alchemy"])
async def test_outcomes_finished_during_an_outage_are_written_when_the_server_is_back(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="litestar_queues")
    registry = TaskRegistry()
    runs: Counter[int] = Counter()
    release = asyncio.Event()

    @task("outage.job", registry=registry)
    async def job(number: int) -> int:
        runs[number] += 1
        await release.wait()
        return number

    alchemy = backend == "advanced-alchemy"  # on PostgreSQL, through SQLAlchemy and asyncpg
    server = await anyio.to_thread.run_sync(private_server, "postgres" if alchemy else backend)
    url = server.url.replace("postgresql://", "postgresql+asyncpg://", 1) if alchemy else server.url
    worker_config = WorkerConfig(
        poll_interval=0.05, heartbeat_interval=0.2, stale_threshold=8, maintenance_interval=0.5
    )
    config = QueueConfig(queue_backend=backend_config(url, "outage"), worker=worker_config)
    try:
        async with QueueService(config, registry=registry) as service:
            ids = [(await service.enqueue(job, number)).id for number in range(JOBS)]
            worker = Worker(service)
            await worker.start()
            try:
                with anyio.fail_after(90):  # a hang fails the test, not the whole run
                    while len(runs) < JOBS:
                        await asyncio.sleep(0.01)
                    await anyio.to_thread.run_sync(server.stop)
                    release.set()  # every attempt ends while the server is down: writing the outcomes fails
                    while caplog.text.count("holding it and trying again") < JOBS:
                        await asyncio.sleep(0.01)
                    await asyncio.sleep(1.0)  # the outage goes on for a second
                    await anyio.to_thread.run_sync(server.start)
                    records = [await service.wait_for(record_id, timeout=30) for record_id in ids]
            finally:
                await worker.stop()
    finally:
        await anyio.to_thread.run_sync(server.destroy)
    assert [(record.status, record.result) for record in records] == [(TaskStatus.COMPLETED, n) for n in range(JOBS)]
    assert set(runs.values()) == {1}, runs  # nothing ran twice
    assert "stopped renewing its lease" not in caplog.text
    assert caplog.text.count("outcome written after") == JOBS


@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
async def test_after_a_restart_the_advanced_alchemy_backend_fails_one_statement_not_one_per_pooled_connection(
    driver: str,
) -> None:
    """A restart leaves every pooled connection dead. The first statement that meets one discards them all (as
    SQLAlchemy does for the statements it runs), also when it ran on the driver connection (native statements)."""
    server = await anyio.to_thread.run_sync(private_server, "postgres")
    config = backend_config(server.url.replace("postgresql://", f"postgresql+{driver}://", 1), "restart")
    try:
        async with config.create_backend() as backend:
            now = utc_now()

            async def claim() -> object:
                return await backend.claim(["default"], owner="w", limit=1, now=now, lease_seconds=30)

            await asyncio.gather(*(claim() for _ in range(4)))  # four connections in the pool
            await anyio.to_thread.run_sync(server.restart)
            failures = []
            for _ in range(4):
                try:
                    await claim()
                except Exception as error:
                    failures.append(repr(error))
    finally:
        await anyio.to_thread.run_sync(server.destroy)
    assert len(failures) <= 1, failures

"""PostgreSQL: statements that lock several task rows lock them in id order, so they cannot deadlock each other.

A worker's batched finish and its lease renewal both lock several of its rows, on two connections at once. Locked
in whatever order each statement met them, the two could wait for each other and PostgreSQL would abort one (the
finished outcome lost, the job run again once its lease expired).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import msgspec
import pytest

from litestar_queues import QueueConfig, QueueService, TaskRegistry, Worker, WorkerConfig, task
from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackend
from litestar_queues.clock import utc_now
from litestar_queues.records import Lease, Outcome, TaskRecord, TaskStatus, new_record_id
from litestar_queues.testing import server_url

pytestmark = pytest.mark.anyio


async def _running_pair(backend: AdvancedAlchemyBackend) -> tuple[TaskRecord, TaskRecord]:
    """Two running records, the higher id claimed (so stored) first: whether a plan visits rows in the order of the
    statement's arrays (index lookups) or of the table (a scan), it meets the higher one first."""
    now = utc_now()
    low, high = (TaskRecord(id=new_record_id(), task_name="t", created_at=now, scheduled_at=now) for _ in range(2))
    await backend.enqueue([low, msgspec.structs.replace(high, priority=1)])
    claimed = await backend.claim(["default"], owner="w", limit=2, now=now, lease_seconds=60)
    low, high = sorted(claimed, key=lambda record: record.id)
    return low, high


async def _blocking_someone(connection: asyncpg.Connection) -> None:
    """Return once another session waits for a lock ``connection`` holds (the statement under test is blocked)."""
    for _ in range(500):
        if await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        ):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the statement under test never waited for the locked row")


def _statements(backend: AdvancedAlchemyBackend) -> dict[str, Callable[[list[Lease]], Awaitable[object]]]:
    now = utc_now()
    return {
        "renew": lambda leases: backend.renew(leases, now=now, lease_seconds=60),
        "batched finish": lambda leases: asyncio.gather(
            *(backend.finish(lease, Outcome(status=TaskStatus.COMPLETED), now=now) for lease in leases)
        ),
    }


@pytest.mark.parametrize("statement", ["renew", "batched finish"])
async def test_rows_are_locked_in_id_order(pg_driver: str, make_factory: Callable[..., Any], statement: str) -> None:
    """Another session holds the lower row and then asks for the higher one: the statement must not hold it."""
    backend: AdvancedAlchemyBackend = await make_factory(pg_driver).open()
    low, high = await _running_pair(backend)
    table = backend.tables.tasks.name
    other = await asyncpg.connect(server_url("LQ_POSTGRES_DSN"))
    try:
        transaction = other.transaction()
        await transaction.start()
        # This session detects deadlocks first, so it is the one PostgreSQL would abort.
        await other.execute("SET LOCAL deadlock_timeout = '10ms'")
        await other.execute(f"SELECT 1 FROM {table} WHERE id = $1 FOR UPDATE", low.id)
        blocked = asyncio.ensure_future(_statements(backend)[statement]([high.lease, low.lease]))  # high first
        await _blocking_someone(other)
        # Locked in the order given, the statement holds the higher row now and this would deadlock.
        await other.execute(f"SELECT 1 FROM {table} WHERE id = $1 FOR UPDATE", high.id)
        await transaction.commit()
        await asyncio.wait_for(blocked, 10)
    finally:
        await other.close()
    expected = TaskStatus.RUNNING if statement == "renew" else TaskStatus.COMPLETED
    for record in (low, high):
        stored = await backend.get(record.id)
        assert stored is not None and stored.status is expected


JOBS = 3000
WORKERS = 3


async def test_a_drain_by_several_workers_runs_every_job_once(
    make_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Without a crash or an outage no job runs twice: finishes and renewals of many slots never deadlock."""
    caplog.set_level(logging.WARNING, logger="litestar_queues")
    factory = make_factory("asyncpg")
    await factory.open()  # creates the tables (and drops them after the test)
    runs: Counter[int] = Counter()
    registry = TaskRegistry()

    @task("drain.job", registry=registry)
    async def job(number: int) -> None:
        runs[number] += 1
        await asyncio.sleep((number % 7) * 0.002)

    # Renewals every 5 ms: with 30 slots each, a worker's renewal nearly always overlaps one of its finishes.
    worker_config = WorkerConfig(
        concurrency=30, batch_size=30, heartbeat_interval=0.005, stale_threshold=30, poll_interval=0.05
    )
    services = [
        QueueService(
            QueueConfig(queue_backend=factory.config(alchemy=factory.engine(pool_size=10)), worker=worker_config),
            registry=registry,
        )
        for _ in range(WORKERS)
    ]
    for service in services:
        await service.open()
    try:
        await services[0].enqueue_many([services[0].request(job, number) for number in range(JOBS)])
        workers = [Worker(service) for service in services]
        await asyncio.wait_for(asyncio.gather(*(worker.run_until_idle(timeout=120) for worker in workers)), 180)
        stats = await services[0].get_statistics()
    finally:
        for service in services:
            await service.close()
    twice = [number for number, times in runs.items() if times > 1]
    assert not twice, f"{len(twice)} job(s) ran twice: {twice[:5]}"
    assert stats.counts[TaskStatus.COMPLETED] == JOBS and len(runs) == JOBS
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not problems, problems[:5]

"""Scenarios for SQL backends beyond the contract: PostgreSQL's lock order, a drain by several workers, and servers
that cannot be reached.

Each SQL backend runs them over its own factory (its configuration, its tables); the PostgreSQL ones need asyncpg.

- :func:`assert_rows_locked_in_id_order`: a lease renewal or a batched finish locks the rows it changes in id order, so
  two of them on two connections cannot deadlock (another session holding the lower row and then asking for the
  higher one must not wait for the statement).
- :func:`assert_a_drain_runs_every_job_once`: several workers with many slots drain one backlog; no job runs twice and
  nothing is logged as a warning (finishes and renewals never deadlock).
- :func:`assert_array_types_learned_in_transactions` and :func:`assert_a_pooled_enqueue_wakes_a_direct_listener`:
  PostgreSQL behind a transaction-mode pooler (PgBouncer).
- ``silent_port`` and ``closed_port``: pytest fixtures of a port that accepts connections and never answers, and of
  one that refuses them (import them into a test module to use them).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import msgspec
import pytest

from litestar_queues.backend import BackendConfig, QueueBackend
from litestar_queues.clock import utc_now
from litestar_queues.config import QueueConfig, WorkerConfig
from litestar_queues.records import Lease, Outcome, TaskRecord, TaskStatus, new_record_id
from litestar_queues.service import QueueService
from litestar_queues.sql.backend import SQLQueueBackend
from litestar_queues.task import TaskRegistry, task
from litestar_queues.testing.servers import server_url
from litestar_queues.worker import Worker

__all__ = (
    "LOCKING_STATEMENTS",
    "assert_a_drain_runs_every_job_once",
    "assert_a_pooled_enqueue_wakes_a_direct_listener",
    "assert_array_types_learned_in_transactions",
    "assert_rows_locked_in_id_order",
    "closed_port",
    "silent_port",
)

LOCKING_STATEMENTS = ("renew", "batched finish")
"""The statements that change several running rows of one worker at once."""


async def _running_pair(backend: QueueBackend) -> tuple[TaskRecord, TaskRecord]:
    """Two running records, the higher id claimed (so stored) first: whether a plan visits rows in the order of the
    statement's arrays (index lookups) or of the table (a scan), it meets the higher one first."""
    now = utc_now()
    low, high = (TaskRecord(id=new_record_id(), task_name="t", created_at=now, scheduled_at=now) for _ in range(2))
    await backend.enqueue([low, msgspec.structs.replace(high, priority=1)])
    claimed = await backend.claim(["default"], owner="w", limit=2, now=now, lease_seconds=60)
    low, high = sorted(claimed, key=lambda record: record.id)
    return low, high


async def _blocking_someone(connection: Any) -> None:
    """Return once another session waits for a lock ``connection`` holds (the statement under test is blocked)."""
    for _ in range(500):
        if await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        ):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the statement under test never waited for the locked row")


def _locking(backend: QueueBackend, statement: str) -> Callable[[list[Lease]], Awaitable[object]]:
    now = utc_now()
    if statement == "renew":
        return lambda leases: backend.renew(leases, now=now, lease_seconds=60)
    return lambda leases: asyncio.gather(
        *(backend.finish(lease, Outcome(status=TaskStatus.COMPLETED), now=now) for lease in leases)
    )


async def assert_rows_locked_in_id_order(backend: QueueBackend, table: str, statement: str) -> None:
    """Check that ``statement`` (one of :data:`LOCKING_STATEMENTS`) locks its rows in id order on PostgreSQL.

    ``backend`` is opened on the database of ``LQ_POSTGRES_DSN`` and stores its records in ``table`` (a name SQL can
    use as it is). Another session holds the lower of two running rows, the statement is sent for both (the higher
    first) and waits; the session then asks for the higher row. Had the statement locked the higher row first, this
    would deadlock (and PostgreSQL would abort the session, whose ``deadlock_timeout`` is the shorter).
    """
    import asyncpg  # type: ignore[import-untyped]  # noqa: PLC0415 - only for PostgreSQL backends

    low, high = await _running_pair(backend)
    other = await asyncpg.connect(server_url("LQ_POSTGRES_DSN"))
    try:
        transaction = other.transaction()
        await transaction.start()
        await other.execute("SET LOCAL deadlock_timeout = '10ms'")
        await other.execute(f"SELECT 1 FROM {table} WHERE id = $1 FOR UPDATE", low.id)  # noqa: S608 - a table name
        blocked = asyncio.ensure_future(_locking(backend, statement)([high.lease, low.lease]))  # high first
        await _blocking_someone(other)
        await other.execute(f"SELECT 1 FROM {table} WHERE id = $1 FOR UPDATE", high.id)  # noqa: S608 - a table name
        await transaction.commit()
        await asyncio.wait_for(blocked, 10)
    finally:
        await other.close()
    expected = TaskStatus.RUNNING if statement == "renew" else TaskStatus.COMPLETED
    for record in (low, high):
        stored = await backend.get(record.id)
        assert stored is not None and stored.status is expected


async def assert_a_drain_runs_every_job_once(
    backend_configs: Sequence[BackendConfig], jobs: int, caplog: pytest.LogCaptureFixture
) -> None:
    """One service and worker per configuration (of one backend over one database and table prefix, each with its
    own connections) drain ``jobs`` short jobs with 30 slots each and renewals every 5 ms, so that a worker's renewal
    nearly always overlaps one of its finishes. No job may run twice, all must complete, and nothing may be logged as
    a warning."""
    caplog.set_level(logging.WARNING, logger="litestar_queues")
    runs: Counter[int] = Counter()
    registry = TaskRegistry()

    @task("drain.job", registry=registry)
    async def job(number: int) -> None:
        runs[number] += 1
        await asyncio.sleep((number % 7) * 0.002)

    worker_config = WorkerConfig(
        concurrency=30, batch_size=30, heartbeat_interval=0.005, stale_threshold=30, poll_interval=0.05
    )
    services = [
        QueueService(QueueConfig(queue_backend=config, worker=worker_config), registry=registry)
        for config in backend_configs
    ]
    for service in services:
        await service.open()
    try:
        await services[0].enqueue_many([services[0].request(job, number) for number in range(jobs)])
        workers = [Worker(service) for service in services]
        await asyncio.wait_for(asyncio.gather(*(worker.run_until_idle(timeout=120) for worker in workers)), 180)
        stats = await services[0].get_statistics()
    finally:
        for service in services:
            await service.close()
    twice = [number for number, times in runs.items() if times > 1]
    assert not twice, f"{len(twice)} job(s) ran twice: {twice[:5]}"
    assert stats.counts[TaskStatus.COMPLETED] == jobs and len(runs) == jobs
    problems = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert not problems, problems[:5]


def _pooled_record() -> TaskRecord:
    now = utc_now()
    return TaskRecord(id=new_record_id(), task_name="t", queue="pooled", created_at=now, scheduled_at=now)


async def assert_array_types_learned_in_transactions(
    open_backend: Callable[[], Awaitable[QueueBackend]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """asyncpg switches ``jit`` for the session around its type introspection; outside a transaction a pooler spreads
    the three statements over three server connections (slow JIT'd introspection, ``jit`` changed for others). The
    backend ``open_backend`` opens (asyncpg behind the pooler) enqueues, claims, renews, finishes and counts, and
    asyncpg may introspect only inside transactions meanwhile."""
    import asyncpg.connection  # type: ignore[import-untyped]  # noqa: PLC0415 - PostgreSQL scenarios only

    outside: list[list[int]] = []
    introspect = asyncpg.connection.Connection._introspect_types

    async def watched(connection: Any, typeoids: Any, timeout: Any) -> Any:
        if not connection.is_in_transaction():
            outside.append(sorted(typeoids))
        return await introspect(connection, typeoids, timeout)

    monkeypatch.setattr(asyncpg.connection.Connection, "_introspect_types", watched)
    backend = await open_backend()
    await backend.enqueue([_pooled_record() for _ in range(3)])
    claimed = await backend.claim(["pooled"], owner="w", limit=3, now=utc_now(), lease_seconds=30)
    leases = [Lease(record.id, "w", record.token) for record in claimed]
    await backend.renew(leases, now=utc_now(), lease_seconds=30)
    for lease in leases:
        await backend.finish(lease, Outcome(status=TaskStatus.COMPLETED, result=[1]), now=utc_now())
    await backend.statistics(now=utc_now())
    assert len(claimed) == 3
    assert outside == [], f"asyncpg introspected types {outside} outside a transaction"


async def assert_a_pooled_enqueue_wakes_a_direct_listener(polling: QueueBackend, listening: SQLQueueBackend) -> None:
    """``polling`` (behind the pooler, no LISTEN) enqueues; ``listening`` (LISTEN on the server directly), parked on
    a 30 s wait, must be woken by the NOTIFY that went through the pooler."""
    await listening.wait_for_work(["pooled"], timeout=0.01)  # the first wait starts the listener
    assert listening.listener is not None
    assert await listening.listener.wait_connected(10)  # (its subscription wakes every waiter)
    waiting = asyncio.ensure_future(listening.wait_for_work(["pooled"], timeout=30))
    try:
        await asyncio.sleep(0.1)  # parked on its future: only a notification ends it before the 30 s timeout
        assert not waiting.done()
        now = utc_now()
        await polling.enqueue(
            [TaskRecord(id=new_record_id(), task_name="t", queue="pooled", created_at=now, scheduled_at=now)]
        )
        done, _ = await asyncio.wait([waiting], timeout=15)
        assert done, "an enqueue through the pooler did not wake a LISTEN on the direct connection"
    finally:
        waiting.cancel()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel completes them) and never sends a byte."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

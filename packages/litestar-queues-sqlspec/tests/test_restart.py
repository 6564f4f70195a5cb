"""A PostgreSQL restart in the middle of producing and consuming work loses nothing, and wakeups come back."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import anyio
import pytest

from litestar_queues.backends.sqlspec import SQLSpecBackend, SQLSpecBackendConfig
from litestar_queues.clock import utc_now
from litestar_queues.records import Lease, Outcome, TaskRecord, TaskStatus, new_record_id

pytestmark = pytest.mark.anyio

RECORDS = 900
BATCH = 30
LEASE_SECONDS = 1.0


@pytest.mark.parametrize(("driver", "mode"), [("asyncpg", "immediate"), ("psycopg", "fast")])
async def test_restart_mid_run_loses_nothing(throwaway_postgres: Any, driver: str, mode: str) -> None:
    url = throwaway_postgres.dsn.replace("postgresql://", f"postgresql+{driver}://", 1)
    config = SQLSpecBackendConfig.from_url(url, table_prefix="restart_")
    records = [
        TaskRecord(id=new_record_id(), task_name="t", args=[n], created_at=utc_now(), scheduled_at=utc_now())
        for n in range(RECORDS)
    ]
    # Bounded from start to end: a hang anywhere (opening included) fails the test instead of the CI run.
    with anyio.fail_after(120):
        await _run(config, throwaway_postgres, mode, records)


async def _run(config: SQLSpecBackendConfig, throwaway_postgres: Any, mode: str, records: list[TaskRecord]) -> None:
    produced = anyio.Event()
    halfway = anyio.Event()
    errors: list[str] = []

    async with config.create_backend() as backend:
        assert isinstance(backend, SQLSpecBackend)
        await backend.wait_for_work(["default"], timeout=0)  # listening from here on, through the restart

        async def produce() -> None:
            for start in range(0, RECORDS, BATCH):
                batch = records[start : start + BATCH]
                while True:  # a lost enqueue is retried: the same ids make the retry idempotent
                    try:
                        await backend.enqueue(batch)
                        break
                    except Exception as error:
                        errors.append(f"enqueue: {error!r}")
                        await anyio.sleep(0.05)
                if start >= RECORDS // 3:
                    halfway.set()
                await anyio.sleep(0.005)
            produced.set()

        async def consume(owner: str) -> None:
            unfinished: list[Lease] = []
            while True:
                try:
                    now = utc_now()
                    for lease in list(unfinished):  # a finish whose answer was lost is sent again
                        await backend.finish(lease, Outcome(status=TaskStatus.COMPLETED), now=now)
                        unfinished.remove(lease)
                    for stale in await backend.expired_leases(now=now, limit=50):
                        await backend.finish(
                            stale.lease,
                            Outcome(status=TaskStatus.PENDING, scheduled_at=now, only_if_lease_expired=True),
                            now=now,
                        )
                    claimed = await backend.claim(
                        ["default"], owner=owner, limit=10, now=now, lease_seconds=LEASE_SECONDS
                    )
                    for record in claimed:
                        unfinished.append(record.lease)
                        await backend.finish(record.lease, Outcome(status=TaskStatus.COMPLETED), now=utc_now())
                        unfinished.remove(record.lease)
                    if not claimed:
                        stats = await backend.statistics(now=now)
                        if produced.is_set() and stats.counts[TaskStatus.COMPLETED] == RECORDS:
                            return
                        await anyio.sleep(0.02)
                except Exception as error:
                    errors.append(f"consume: {error!r}")
                    await anyio.sleep(0.05)

        async def restart() -> None:
            await halfway.wait()
            await anyio.to_thread.run_sync(throwaway_postgres.stop, mode)
            await anyio.sleep(0.3)
            await anyio.to_thread.run_sync(throwaway_postgres.start)

        async with anyio.create_task_group() as group:
            group.start_soon(produce)
            group.start_soon(restart)
            group.start_soon(consume, "a")
            group.start_soon(consume, "b")

        assert errors, "the restart should have interrupted some operations"
        # An outage, then a recovery: the errors say the connection failed, never that a driver's internal state
        # broke (a kept connection the pool took back, or one left in the middle of an operation).
        internal = [error for error in errors if "InterfaceError" in error or "InternalClientError" in error]
        assert not internal, internal[:3]
        stats = await backend.statistics(now=utc_now())
        assert stats.counts[TaskStatus.COMPLETED] == RECORDS
        assert sum(stats.counts.values()) == RECORDS
        for record in records[:: RECORDS // 10]:
            stored = await backend.get(record.id)
            assert stored is not None and stored.status is TaskStatus.COMPLETED and stored.args == record.args

        # The listener came back by itself: a wakeup is prompt again.
        listener = backend.listener
        assert listener is not None
        assert await listener.wait_connected(10)
        started = time.monotonic()
        async with anyio.create_task_group() as group:
            group.start_soon(partial(backend.wait_for_work, ["default"], timeout=20))
            await anyio.sleep(0.05)
            await backend.enqueue(
                [TaskRecord(id=new_record_id(), task_name="t", created_at=utc_now(), scheduled_at=utc_now())]
            )
        assert time.monotonic() - started < 2

"""PostgreSQL through PgBouncer in transaction pooling mode (the test servers' ``LQ_PGBOUNCER_DSN``).

The whole conformance suite also runs through it (``test_conformance.py``); these are the pooler's own cases:
the fallback to polling without a direct connection, migrations racing through the pooler, and asyncpg's type
introspection, whose session-level ``jit`` switching must stay inside one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from litestar_queues.backend import Capability
from litestar_queues.backends.sqlspec import SQLSpecBackend
from litestar_queues.clock import utc_now
from litestar_queues.records import Lease, Outcome, RecordFilter, TaskRecord, TaskStatus, new_record_id
from litestar_queues.testing import server_url

pytestmark = pytest.mark.anyio


def _record(queue: str = "pgbouncer") -> TaskRecord:
    now = utc_now()
    return TaskRecord(id=new_record_id(), task_name="t", queue=queue, created_at=now, scheduled_at=now)


async def test_asyncpg_learns_the_array_types_in_one_transaction_not_across_pooled_connections(
    make_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """asyncpg switches ``jit`` for the session around its catalog query; outside a transaction the pooler spreads
    the three statements over three server connections (slow JIT'd introspection, ``jit`` changed for others)."""
    import asyncpg.connection

    outside: list[list[int]] = []
    introspect = asyncpg.connection.Connection._introspect_types

    async def watched(connection: Any, typeoids: Any, timeout: Any) -> Any:
        if not connection.is_in_transaction():
            outside.append(sorted(typeoids))
        return await introspect(connection, typeoids, timeout)

    monkeypatch.setattr(asyncpg.connection.Connection, "_introspect_types", watched)
    backend: SQLSpecBackend = await make_factory("asyncpg+pgbouncer").open()
    records = [_record() for _ in range(3)]
    await backend.enqueue(records)
    claimed = await backend.claim(["pgbouncer"], owner="w", limit=3, now=utc_now(), lease_seconds=30)
    leases = [Lease(record.id, "w", record.token) for record in claimed]
    await backend.renew(leases, now=utc_now(), lease_seconds=30)
    for lease in leases:
        await backend.finish(lease, Outcome(status=TaskStatus.COMPLETED, result=[1]), now=utc_now())
    await backend.statistics(now=utc_now())
    page = await backend.query(RecordFilter(status=TaskStatus.COMPLETED), limit=10)
    assert {record.id for record in page.records} == {record.id for record in records}
    assert outside == []


async def test_without_direct_dsn_a_backend_polls_and_its_enqueues_still_wake_listeners(
    pg_driver: str, make_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    factory = make_factory(f"{pg_driver}+pgbouncer")
    with caplog.at_level(logging.INFO, logger="litestar_queues.sql"):
        polling: SQLSpecBackend = await factory.open(direct_dsn=None)
    assert Capability.PUSH_WAKEUP not in polling.capabilities
    assert Capability.FINISH_WAKEUP not in polling.capabilities
    assert polling.listener is None  # nothing ever LISTENs through the pooler
    assert "has no direct URL to LISTEN on: workers poll" in caplog.text
    listening: SQLSpecBackend = await factory.open(direct_dsn=server_url("LQ_POSTGRES_DSN"))
    assert Capability.PUSH_WAKEUP in listening.capabilities
    await listening.wait_for_work(["pgbouncer"], timeout=0.01)  # the first wait starts the listener
    assert listening.listener is not None
    assert await listening.listener.wait_connected(10)

    woken = anyio.Event()

    async def wait() -> None:
        await listening.wait_for_work(["pgbouncer"], timeout=30)
        woken.set()

    record = _record()
    async with anyio.create_task_group() as group:
        group.start_soon(wait)
        await anyio.sleep(0.1)  # parked on its future: only a notification ends it before the 30 s timeout
        await polling.enqueue([record])  # NOTIFY through the pooler, sent at commit
        with anyio.move_on_after(15):
            await woken.wait()
        assert woken.is_set(), "an enqueue through PgBouncer did not wake a LISTEN on the direct connection"


async def test_concurrent_starts_through_the_pooler_migrate_once_and_leave_no_lock_behind(
    pg_driver: str, make_factory: Callable[..., Any]
) -> None:
    """A session-level advisory lock would stay on whichever server connection took it (its unlock may run on
    another one), and the next start waits for it forever."""
    factory = make_factory(f"{pg_driver}+pgbouncer")  # a fresh prefix: every start finds the schema missing
    backends: list[SQLSpecBackend] = []

    async def start() -> None:
        backends.append(await factory.open())

    with anyio.fail_after(120):
        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(start)
    versions = await backends[0]._migrator.versions()
    assert await backends[0]._migrator.pending() == []
    for backend in backends[1:]:
        assert await backend._migrator.applied() >= set(versions)
    key = backends[0]._dialect.migration_lock_key % (1 << 64)  # type: ignore[attr-defined]
    direct = make_factory(pg_driver, table_prefix=factory.prefix, version_table=factory.version_table)
    backend: SQLSpecBackend = await direct.open()
    held = await backend._db.select(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND CAST(classid AS bigint) = :high "
        "AND CAST(objid AS bigint) = :low AND objsubid = 1",
        {"high": key >> 32, "low": key & 0xFFFFFFFF},
    )
    assert list(held) == []

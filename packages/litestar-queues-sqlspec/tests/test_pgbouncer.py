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
from litestar_queues.testing import server_url
from litestar_queues.testing.sql import (
    assert_a_pooled_enqueue_wakes_a_direct_listener,
    assert_array_types_learned_in_transactions,
)

pytestmark = pytest.mark.anyio


async def test_asyncpg_learns_the_array_types_in_one_transaction_not_across_pooled_connections(
    make_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    await assert_array_types_learned_in_transactions(make_factory("asyncpg+pgbouncer").open, monkeypatch)


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
    await assert_a_pooled_enqueue_wakes_a_direct_listener(polling, listening)


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

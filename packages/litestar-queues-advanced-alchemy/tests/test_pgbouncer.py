"""An application's engine through PgBouncer in transaction pooling mode (the test servers' ``LQ_PGBOUNCER_DSN``).

The whole conformance suite also runs through it (``test_conformance.py``); these are the pooler's own cases: the
engine settings ``open()`` demands, polling without ``listen_url`` while enqueues still wake a direct listener, and
asyncpg's type introspection kept inside one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from litestar_queues.backend import Capability
from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackend
from litestar_queues.clock import utc_now
from litestar_queues.errors import ConfigurationError
from litestar_queues.records import Lease, Outcome, TaskRecord, TaskStatus, new_record_id
from litestar_queues.testing import server_url

pytestmark = pytest.mark.anyio


def _record(queue: str = "pgbouncer") -> TaskRecord:
    now = utc_now()
    return TaskRecord(id=new_record_id(), task_name="t", queue=queue, created_at=now, scheduled_at=now)


@pytest.mark.parametrize(
    "connect_args",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"statement_cache_size": 0, "prepared_statement_cache_size": 0}, id="generated-names"),
        pytest.param({"prepared_statement_name_func": str}, id="statement-cache-on"),
    ],
)
async def test_an_asyncpg_engine_that_prepares_named_statements_is_refused_at_open(
    make_factory: Callable[..., Any], connect_args: dict[str, Any]
) -> None:
    factory = make_factory("asyncpg+pgbouncer")
    with pytest.raises(ConfigurationError, match="prepared_statement_name_func"):
        await factory.open(alchemy=factory.engine(connect_args=connect_args))


async def test_a_psycopg_engine_that_prepares_statements_is_refused_at_open(
    make_factory: Callable[..., Any],
) -> None:
    factory = make_factory("psycopg+pgbouncer")
    with pytest.raises(ConfigurationError, match='"prepare_threshold": None'):
        await factory.open(alchemy=factory.engine(connect_args={}))


async def test_pooler_mode_is_for_postgresql_only(make_factory: Callable[..., Any]) -> None:
    with pytest.raises(ConfigurationError, match="PostgreSQL only"):
        make_factory("aiosqlite").config(pooler_mode="transaction").create_backend()
    with pytest.raises(ConfigurationError, match="pooler_mode must be one of"):
        make_factory("aiosqlite").config(pooler_mode="statement")


async def test_without_listen_url_a_backend_polls_and_its_enqueues_still_wake_listeners(
    pg_driver: str, make_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    factory = make_factory(f"{pg_driver}+pgbouncer")
    with caplog.at_level(logging.INFO, logger="litestar_queues.sql"):
        polling: AdvancedAlchemyBackend = await factory.open(listen_url=None)
    assert not {Capability.PUSH_WAKEUP, Capability.FINISH_WAKEUP} & polling.capabilities
    assert polling.listener is None  # nothing ever LISTENs through the pooler
    assert "has no direct URL to LISTEN on: workers poll" in caplog.text
    direct = server_url("LQ_POSTGRES_DSN").replace("postgresql://", f"postgresql+{pg_driver}://", 1)
    listening: AdvancedAlchemyBackend = await factory.open(listen_url=direct)
    await listening.wait_for_work(["pgbouncer"], timeout=0.01)  # the first wait starts the listener
    assert listening.listener is not None
    assert await listening.listener.wait_connected(10)
    woken = anyio.Event()

    async def wait() -> None:
        await listening.wait_for_work(["pgbouncer"], timeout=30)
        woken.set()

    async with anyio.create_task_group() as group:
        group.start_soon(wait)
        await anyio.sleep(0.1)  # parked on its future: only a notification ends it before the 30 s timeout
        await polling.enqueue([_record()])  # NOTIFY through the pooler, sent at commit
        with anyio.move_on_after(15):
            await woken.wait()
        assert woken.is_set(), "an enqueue through PgBouncer did not wake a LISTEN on the direct connection"


async def test_asyncpg_learns_the_array_types_in_one_transaction_not_across_pooled_connections(
    make_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """asyncpg switches ``jit`` for the session around its catalog query; outside a transaction the pooler spreads
    the three statements over three server connections (slow JIT'd introspection, ``jit`` changed for others).

    The tables come from an earlier start, as with migrations run apart: DDL through an engine makes SQLAlchemy
    reload every connection's type cache, so asyncpg learns the types again on first use (see ``pooler``)."""
    import asyncpg.connection

    factory = make_factory("asyncpg+pgbouncer")
    await factory.open()  # creates the tables

    outside: list[list[int]] = []
    introspect = asyncpg.connection.Connection._introspect_types

    async def watched(connection: Any, typeoids: Any, timeout: Any) -> Any:
        if not connection.is_in_transaction():
            outside.append(sorted(typeoids))
        return await introspect(connection, typeoids, timeout)

    monkeypatch.setattr(asyncpg.connection.Connection, "_introspect_types", watched)
    backend: AdvancedAlchemyBackend = await factory.open(create_tables=False)  # a new engine: a new process
    records = [_record() for _ in range(3)]
    await backend.enqueue(records)
    claimed = await backend.claim(["pgbouncer"], owner="w", limit=3, now=utc_now(), lease_seconds=30)
    leases = [Lease(record.id, "w", record.token) for record in claimed]
    await backend.renew(leases, now=utc_now(), lease_seconds=30)
    for lease in leases:
        await backend.finish(lease, Outcome(status=TaskStatus.COMPLETED, result=[1]), now=utc_now())
    await backend.statistics(now=utc_now())
    assert len(claimed) == 3
    assert outside == []

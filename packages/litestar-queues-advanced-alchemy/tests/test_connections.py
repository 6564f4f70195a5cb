"""PostgreSQL native statements keep a few of the pool's connections between them, never many, never for long."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackend
from litestar_queues.backends.advanced_alchemy.stores.connections import KEPT_SECONDS
from litestar_queues.backends.advanced_alchemy.stores.postgres import PostgresStore
from litestar_queues.clock import utc_now
from litestar_queues.records import TaskRecord, new_record_id

pytestmark = pytest.mark.anyio


def _record() -> TaskRecord:
    now = utc_now()
    return TaskRecord(id=new_record_id(), task_name="t", created_at=now, scheduled_at=now)


def _store(backend: AdvancedAlchemyBackend) -> PostgresStore:
    assert isinstance(backend.store, PostgresStore)
    return backend.store


async def _busy(backend: AdvancedAlchemyBackend) -> None:
    """Eight enqueues and eight claims at once: more statements in flight than connections are kept."""

    async def claim() -> None:
        await backend.claim(["default"], owner="w", limit=1, now=utc_now(), lease_seconds=30)

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(backend.enqueue, [_record()])
            group.start_soon(claim)


async def test_a_few_connections_are_kept_and_go_back_within_a_second(
    pg_driver: str, make_factory: Callable[..., Any]
) -> None:
    factory = make_factory(pg_driver)
    backend: AdvancedAlchemyBackend = await factory.open(alchemy=factory.engine(pool_size=6, max_overflow=10))
    pool = backend.engine.pool
    await _busy(backend)
    kept = _store(backend).connections.kept
    assert 1 <= len(kept) <= 3, "half the pool at most (6 // 2)"
    assert pool.checkedout() == len(kept), "nothing else is held"  # type: ignore[attr-defined]
    started = anyio.current_time()
    with anyio.fail_after(KEPT_SECONDS * 5):
        while pool.checkedout():  # type: ignore[attr-defined]
            await anyio.sleep(0.05)
    assert anyio.current_time() - started <= KEPT_SECONDS * 5
    assert not _store(backend).connections.kept, "an idle backend keeps nothing"
    await _busy(backend)
    assert pool.checkedout()  # type: ignore[attr-defined]
    await backend.close()
    assert pool.checkedout() == 0, "closing gives the kept connections back"  # type: ignore[attr-defined]


async def test_no_connection_is_kept_from_a_pool_without_room(pg_driver: str, make_factory: Callable[..., Any]) -> None:
    factory = make_factory(pg_driver)
    unpooled = create_async_engine(factory.url, poolclass=NullPool)
    try:
        for engine in (unpooled, factory.engine(pool_size=1)):
            backend: AdvancedAlchemyBackend = await factory.open(alchemy=engine)
            await _busy(backend)
            assert not _store(backend).connections.kept
    finally:
        await unpooled.dispose()


async def test_a_kept_connection_the_server_ended_is_not_used(make_factory: Callable[..., Any]) -> None:
    """asyncpg sees the end of a connection as it happens: the next statement takes a live one."""
    factory = make_factory("asyncpg")
    backend: AdvancedAlchemyBackend = await factory.open()
    await backend.enqueue([_record()])
    (kept,) = _store(backend).connections.kept
    async with factory.engine().connect() as other:
        await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": kept.get_server_pid()})
    with anyio.fail_after(5):
        while not kept.is_closed():
            await anyio.sleep(0.01)
    record = _record()
    await backend.enqueue([record])
    assert (await backend.get(record.id)) is not None
    assert kept not in _store(backend).connections.kept

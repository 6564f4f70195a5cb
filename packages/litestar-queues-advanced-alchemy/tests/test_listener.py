"""PostgreSQL LISTEN through SQLAlchemy: a dedicated driver connection that comes back when it is lost and never
returns to the application's pool in its listening state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from sqlalchemy import text

from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackend
from litestar_queues.backends.advanced_alchemy.stores.postgres import PostgresStore
from litestar_queues.clock import utc_now
from litestar_queues.errors import ConfigurationError
from litestar_queues.records import TaskRecord, new_record_id

pytestmark = pytest.mark.anyio

TIMEOUT = 20.0


def _record() -> TaskRecord:
    now = utc_now()
    return TaskRecord(id=new_record_id(), task_name="t", created_at=now, scheduled_at=now)


def _held(backend: AdvancedAlchemyBackend) -> int:
    """Connections out of the engine's pool, less those kept between native statements (see ``test_connections``)."""
    assert isinstance(backend.store, PostgresStore)
    return int(backend.engine.pool.checkedout()) - len(backend.store.connections.kept)  # type: ignore[attr-defined]


async def _woken_by(backend: AdvancedAlchemyBackend, act: Callable[[], Any]) -> bool:
    """Whether a ``wait_for_work`` started before ``act`` returns well before its timeout."""
    started = anyio.current_time()
    async with anyio.create_task_group() as group:
        done = anyio.Event()

        async def waiter() -> None:
            await backend.wait_for_work(["default"], timeout=TIMEOUT)
            done.set()

        group.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        await act()
        await done.wait()
    return anyio.current_time() - started < TIMEOUT / 2


async def test_the_listener_comes_back_after_its_connection_is_killed(
    pg_driver: str, make_factory: Callable[..., Any]
) -> None:
    factory = make_factory(pg_driver)
    backend: AdvancedAlchemyBackend = await factory.open()
    other: AdvancedAlchemyBackend = await factory.open()
    assert await _woken_by(backend, lambda: other.enqueue([_record()])), "an enqueue elsewhere wakes the waiter"
    listener = backend.listener
    assert listener is not None and listener.connected and listener.server_pid is not None
    killed = listener.server_pid
    assert _held(backend) == 1, "the listener holds one connection of the pool"

    async def terminate() -> None:
        async with other.engine.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": killed})

    assert await _woken_by(backend, terminate), "the reconnect wakes every waiter (notifications were lost)"
    with anyio.fail_after(10):
        while not listener.connected or listener.server_pid == killed:
            await anyio.sleep(0.02)
    assert await _woken_by(backend, lambda: other.enqueue([_record()])), "the new subscription delivers again"
    assert _held(backend) == 1, "the lost connection was let go of, not leaked"
    await backend.close()
    assert backend.engine.pool.checkedout() == 0
    async with backend.engine.connect() as connection:  # whatever the pool hands out does not listen
        assert (await connection.execute(text("SELECT count(*) FROM pg_listening_channels()"))).scalar() == 0


async def test_a_separate_listen_url_keeps_the_pool_free(pg_driver: str, make_factory: Callable[..., Any]) -> None:
    factory = make_factory(pg_driver)
    listening: AdvancedAlchemyBackend = await factory.open(listen_url=factory.url)
    other: AdvancedAlchemyBackend = await factory.open()
    assert await _woken_by(listening, lambda: other.enqueue([_record()]))
    assert _held(listening) == 0, "the LISTEN connection comes from its own engine"


async def test_listen_url_is_for_postgresql(make_factory: Callable[..., Any]) -> None:
    factory = make_factory("aiosqlite")
    with pytest.raises(ConfigurationError, match="listen_url is for PostgreSQL"):
        factory.config(listen_url="postgresql+asyncpg://nowhere/db").create_backend()

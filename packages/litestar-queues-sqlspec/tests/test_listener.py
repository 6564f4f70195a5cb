"""PostgreSQL LISTEN/NOTIFY wakeups: across backends, after the listener is killed, and for delayed work."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio
import pytest

from litestar_queues.backend import Capability
from litestar_queues.backends.sqlspec import SQLSpecBackend
from litestar_queues.clock import utc_now
from litestar_queues.records import Outcome, TaskRecord, TaskStatus, new_record_id

pytestmark = pytest.mark.anyio

PROMPT = 1.0
"""Seconds within which a wakeup counts as prompt (the waits below are given 20)."""


def _record(queue: str = "default", **changes: Any) -> TaskRecord:
    now = utc_now()
    values: dict[str, Any] = {
        "id": new_record_id(),
        "task_name": "t",
        "queue": queue,
        "created_at": now,
        "scheduled_at": now,
    }
    values.update(changes)
    return TaskRecord(**values)


async def _seconds_until_woken(backend: SQLSpecBackend, act: Callable[[], Any], queue: str = "default") -> float:
    """Start ``wait_for_work`` (20 s timeout), run ``act``, and return how long the wait took."""
    took: list[float] = []

    async def waiter(*, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        started = time.monotonic()
        task_status.started()
        await backend.wait_for_work([queue], timeout=20)
        took.append(time.monotonic() - started)

    async with anyio.create_task_group() as group:
        await group.start(waiter)
        await anyio.sleep(0.05)  # the waiter is parked on its future
        await act()
    return took[0]


async def _terminate(backend: SQLSpecBackend, pid: int) -> None:
    async with backend.sqlspec_config.provide_session() as session:  # type: ignore[attr-defined]
        await session.select_value("SELECT pg_terminate_backend(:pid)", {"pid": pid})


async def test_enqueue_on_one_backend_wakes_a_waiter_on_another(
    pg_driver: str, make_factory: Callable[..., Any]
) -> None:
    factory = make_factory(pg_driver)
    waiting, enqueuing = await factory.open(), await factory.open()
    took = await _seconds_until_woken(waiting, lambda: enqueuing.enqueue([_record()]))
    assert took < PROMPT


async def test_work_on_other_queues_does_not_wake(pg_driver: str, make_factory: Callable[..., Any]) -> None:
    backend = await make_factory(pg_driver).open()
    with anyio.move_on_after(0.5) as scope:
        await _seconds_until_woken(backend, lambda: backend.enqueue([_record("other")]))
    assert scope.cancelled_caught


async def test_finish_on_one_backend_wakes_a_finish_waiter_on_another(
    pg_driver: str, make_factory: Callable[..., Any]
) -> None:
    factory = make_factory(pg_driver)
    waiting, working = await factory.open(), await factory.open()
    record = _record()
    await working.enqueue([record])
    [running] = await working.claim(["default"], owner="w", limit=1, now=utc_now(), lease_seconds=30)
    took: list[float] = []

    async def waiter(*, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        started = time.monotonic()
        task_status.started()
        await waiting.wait_for_finish(record.id, timeout=20)
        took.append(time.monotonic() - started)

    async with anyio.create_task_group() as group:
        await group.start(waiter)
        await anyio.sleep(0.1)
        await working.finish(running.lease, Outcome(status=TaskStatus.COMPLETED), now=utc_now())
    assert took[0] < PROMPT


async def test_finishes_sharing_a_statement_wake_every_waiter(pg_driver: str, make_factory: Callable[..., Any]) -> None:
    """Concurrent finishes share one statement and their ids share notifications: each waiter still wakes."""
    factory = make_factory(pg_driver)
    waiting, working = await factory.open(), await factory.open()
    records = [_record() for _ in range(44)] + [_record(id="an,id,with,commas")]
    records += [_record(id=f"{index}-{'☃' * 250}") for index in range(25)]  # 25 ids of ~750 bytes
    await working.enqueue(records)
    running = await working.claim(["default"], owner="w", limit=len(records), now=utc_now(), lease_seconds=30)
    assert len(running) == len(records)
    woken: list[str] = []

    async def waiter(record_id: str, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        started = time.monotonic()
        task_status.started()
        await waiting.wait_for_finish(record_id, timeout=20)
        if time.monotonic() - started < PROMPT:
            woken.append(record_id)

    async def finish(record: TaskRecord) -> None:
        await working.finish(record.lease, Outcome(status=TaskStatus.COMPLETED), now=utc_now())

    async with anyio.create_task_group() as group:
        for record in records:
            await group.start(waiter, record.id)
        await anyio.sleep(0.1)
        async with anyio.create_task_group() as finishing:
            for record in running:
                finishing.start_soon(finish, record)
    assert sorted(woken) == sorted(record.id for record in records)


async def test_wakeups_arrive_promptly_after_the_listener_is_terminated(
    pg_driver: str, make_factory: Callable[..., Any]
) -> None:
    factory = make_factory(pg_driver)
    backend, other = await factory.open(), await factory.open()
    listener = backend.listener
    assert listener is not None
    await backend.wait_for_work(["default"], timeout=0)  # the first wait starts listening
    assert await listener.wait_connected(5)
    assert listener.server_pid is not None
    killed = listener.server_pid

    # A waiter parked before the kill is woken by the reconnect (notifications sent meanwhile are lost).
    took = await _seconds_until_woken(backend, lambda: _terminate(other, killed))
    assert took < PROMPT + 1

    with anyio.fail_after(5):
        while not listener.connected or listener.server_pid == killed:
            await anyio.sleep(0.02)
    # The new subscription delivers again: an enqueue elsewhere wakes a waiter promptly.
    assert await _seconds_until_woken(backend, lambda: other.enqueue([_record()])) < PROMPT


async def test_a_backend_that_only_enqueues_never_listens_and_the_first_wait_misses_nothing(
    pg_driver: str, make_factory: Callable[..., Any]
) -> None:
    factory = make_factory(pg_driver)
    web, worker = await factory.open(), await factory.open()
    await web.enqueue([_record()])
    assert web.listener is not None and worker.listener is not None
    assert not web.listener.started and not worker.listener.started
    # Work enqueued before anyone listened is found at once by the first wait, which then subscribes.
    started = time.monotonic()
    await worker.wait_for_work(["default"], timeout=20)
    assert time.monotonic() - started < PROMPT
    assert await worker.listener.wait_connected(5)
    assert not web.listener.started
    # From then on, the other backend's enqueues wake the waiter promptly.
    assert await _seconds_until_woken(worker, lambda: web.enqueue([_record()])) < PROMPT
    assert not web.listener.started


async def test_wait_for_work_returns_when_a_delayed_record_falls_due(
    pg_driver: str, make_factory: Callable[..., Any]
) -> None:
    backend = await make_factory(pg_driver).open()
    await backend.enqueue([_record(scheduled_at=utc_now() + timedelta(seconds=0.5))])
    await anyio.sleep(0.1)  # let the enqueue's own NOTIFY arrive before waiting
    started = time.monotonic()
    await backend.wait_for_work(["default"], timeout=20)
    assert 0.2 < time.monotonic() - started < 2


async def test_without_listen_notify_postgres_polls_only(make_factory: Callable[..., Any]) -> None:
    backend = await make_factory("asyncpg", listen_notify=False).open()
    assert backend.listener is None
    assert Capability.PUSH_WAKEUP not in backend.capabilities and Capability.FINISH_WAKEUP not in backend.capabilities


async def test_the_first_wait_keeps_its_timeout_when_the_listen_connection_hangs(
    make_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = await make_factory("asyncpg").open()

    async def hang() -> Any:
        await anyio.sleep_forever()

    monkeypatch.setattr(backend.sqlspec_config, "create_connection", hang)
    started = time.monotonic()
    await backend.wait_for_work(["default"], timeout=0.3)
    assert 0.25 < time.monotonic() - started < PROMPT
    assert backend.listener is not None and backend.listener.started and not backend.listener.connected

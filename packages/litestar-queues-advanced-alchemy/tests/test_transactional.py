"""Enqueue inside the application's own AsyncSession, through the QueueService, on every database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from litestar_queues import QueueConfig, QueueService, TaskRegistry, TaskStatus, task
from litestar_queues.errors import ConfigurationError
from litestar_queues.events import InMemoryQueueEventSink, QueueEventConfig
from litestar_queues.instrumentation import TRACE_CONTEXT_KEY, Instrumentation, stored_trace_id
from litestar_queues.records import EnqueueOutcome, TaskRecord

pytestmark = pytest.mark.anyio


async def _service(factory: Any, sink: InMemoryQueueEventSink, registry: TaskRegistry, **config: Any) -> QueueService:
    backend = await factory.open()
    service = QueueService(
        QueueConfig(
            queue_backend=backend,
            event_config=QueueEventConfig(enabled=True, sink=sink, publish_enqueued=True),
            **config,
        ),
        registry=registry,
    )
    await service.open()
    return service


async def test_commit_and_rollback_through_the_service(driver: str, make_factory: Callable[..., Any]) -> None:
    registry, sink = TaskRegistry(), InMemoryQueueEventSink()

    @task("users.welcome", registry=registry)
    async def welcome(user_id: int) -> None:
        del user_id

    factory = make_factory(driver)
    service = await _service(factory, sink, registry)
    sessions = async_sessionmaker(service.backend.engine, expire_on_commit=False)  # type: ignore[attr-defined]
    try:
        async with sessions() as session:
            await session.execute(text("SELECT 1"))  # the app's own work in the same transaction
            outcome = await service.enqueue(welcome.using(session=session, key="welcome:1"), 1)
            assert outcome.created and outcome.status is TaskStatus.PENDING
            assert await service.get_task(outcome.id) is None
            assert not sink.events, "task.enqueued waits for the commit"
            await session.commit()
        await service.close()  # waits for the publishing the commit started
        assert [event.type for event in sink.events] == ["task.enqueued"]
        assert sink.events[0].task_id == outcome.id
        await service.open()
        assert (await service.get_task(outcome.id)) is not None

        async with sessions() as session:
            rolled = await service.enqueue_many(
                [service.request(welcome, user) for user in range(2, 12)]
                + [service.request(welcome.using(key="w:x"), 0)],
                session=session,
            )
            assert all(outcome.created for outcome in rolled)
            await session.rollback()
        assert [await service.get_task(outcome.id) for outcome in rolled] == [None] * len(rolled)
        assert (await service.enqueue(welcome.using(key="w:x"), 0)).created, "the rollback freed the key"
        assert [event.type for event in sink.events].count("task.enqueued") == 2, "none for rolled back work"
    finally:
        await service.close()


class _StampTrace(Instrumentation):
    """Stores a trace context with each enqueued record, as a tracing instrumentation does."""

    async def enqueue(
        self, records: Sequence[TaskRecord], send: Callable[[], Awaitable[list[EnqueueOutcome]]]
    ) -> list[EnqueueOutcome]:
        for record in records:
            record.metadata[TRACE_CONTEXT_KEY] = {"traceparent": f"00-{'1' * 32}-{'2' * 16}-01"}
        return await send()


async def test_the_instrumentation_wraps_an_enqueue_inside_the_callers_transaction(
    make_factory: Callable[..., Any],
) -> None:
    registry = TaskRegistry()

    @task("users.welcome", registry=registry)
    async def welcome(user_id: int) -> None:
        del user_id

    service = await _service(
        make_factory("aiosqlite"), InMemoryQueueEventSink(), registry, instrumentation=_StampTrace()
    )
    sessions = async_sessionmaker(service.backend.engine, expire_on_commit=False)  # type: ignore[attr-defined]
    try:
        async with sessions() as session:
            outcome = await service.enqueue(welcome.using(session=session), 1)
            await session.commit()
        stored = await service.get_task(outcome.id)
        assert stored is not None and stored_trace_id(stored) == "1" * 32, "the hook ran before the insert"
    finally:
        await service.close()


async def test_immediate_execution_refuses_a_session(make_factory: Callable[..., Any]) -> None:
    registry, sink = TaskRegistry(), InMemoryQueueEventSink()

    @task("inline", registry=registry, execution_backend="immediate")
    async def inline() -> None:
        pass

    service = await _service(make_factory("aiosqlite"), sink, registry)
    sessions = async_sessionmaker(service.backend.engine)  # type: ignore[attr-defined]
    try:
        async with sessions() as session:
            with pytest.raises(ConfigurationError, match="immediate"):
                await service.enqueue(inline.using(session=session))
    finally:
        await service.close()


async def test_a_session_of_another_database_is_refused(make_factory: Callable[..., Any], tmp_path: Any) -> None:
    registry, sink = TaskRegistry(), InMemoryQueueEventSink()

    @task("t", registry=registry)
    async def work() -> None:
        pass

    service = await _service(make_factory("aiosqlite"), sink, registry)
    other = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    try:
        async with async_sessionmaker(other)() as session:
            with pytest.raises(ConfigurationError, match="queue's own database"):
                await service.enqueue(work.using(session=session))
        with pytest.raises(TypeError, match="AsyncSession"):
            await service.enqueue(work.using(session=object()))
    finally:
        await service.close()
        await other.dispose()

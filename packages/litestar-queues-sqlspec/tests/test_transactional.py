"""Enqueue inside the application's own SQLSpec session, through the QueueService, on every database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from litestar_queues import QueueConfig, QueueService, TaskRegistry, TaskStatus, task

pytestmark = pytest.mark.anyio


async def test_the_job_shares_the_fate_of_the_session_s_transaction(
    driver: str, make_factory: Callable[..., Any]
) -> None:
    registry = TaskRegistry()

    @task("users.welcome", registry=registry)
    async def welcome(user_id: int) -> None:
        del user_id

    backend = await make_factory(driver).open()
    async with QueueService(QueueConfig(queue_backend=backend), registry=registry) as service:
        sessions = backend.sqlspec_config
        async with sessions.provide_session() as session:  # type: ignore[attr-defined]
            await session.begin()
            kept = await service.enqueue(welcome.using(session=session, key="welcome:1"), 1)
            await session.commit()
        async with sessions.provide_session() as session:  # type: ignore[attr-defined]
            await session.begin()
            dropped = await service.enqueue_many(
                [service.request(welcome, n) for n in range(2, 6)] + [service.request(welcome.using(key="w:x"), 0)],
                session=session,
            )
            assert all(outcome.created for outcome in dropped)
            assert [await service.get_task(outcome.id) for outcome in dropped] == [None] * 5, "not before the commit"
            await session.rollback()
        stored = await service.get_task(kept.id)
        assert stored is not None and stored.status is TaskStatus.PENDING
        assert [await service.get_task(outcome.id) for outcome in dropped] == [None] * 5
        assert (await service.enqueue(welcome.using(key="w:x"), 0)).created, "the rollback freed the key"
        with pytest.raises(TypeError, match="SQLSpec driver session"):
            await service.enqueue(welcome.using(session=object()), 7)

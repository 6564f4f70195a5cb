"""Enqueue inside the application's own SQLSpec session, through the QueueService, on every database."""

from __future__ import annotations

import asyncio
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


async def test_an_enqueue_in_the_callers_transaction_sends_its_insert_and_nothing_else(
    make_factory: Callable[..., Any],
) -> None:
    """A transactional enqueue costs the caller's transaction one statement, one round trip: its ``INSERT`` (with its
    NOTIFY), for one record and for many; no BEGIN, SAVEPOINT, SELECT or COMMIT of its own.

    asyncpg's query log shows everything sent on the session's connection (and does see the caller's COMMIT). A
    statement's first execution on a connection also prepares it: the test measures after one of each.
    """
    registry = TaskRegistry()

    @task("users.welcome", registry=registry)
    async def welcome(user_id: int) -> None:
        del user_id

    backend = await make_factory("asyncpg").open()
    sent: list[str] = []
    async with QueueService(QueueConfig(queue_backend=backend), registry=registry) as service:
        async with backend.sqlspec_config.provide_session() as session:  # type: ignore[attr-defined]
            await session.begin()
            await session.select_value("SELECT 1")  # the app's work: its transaction is open
            await service.enqueue(welcome.using(session=session), -1)
            await service.enqueue_many([service.request(welcome, n) for n in (0, 1)], session=session)
            session.connection.add_query_logger(lambda record: sent.append(" ".join(record.query.split()[:4])))
            single = await service.enqueue(welcome.using(session=session, key="welcome:1"), 1)
            await asyncio.sleep(0)  # asyncpg calls the loggers with call_soon: they have run after one loop pass
            one, sent[:] = list(sent), []
            many = await service.enqueue_many([service.request(welcome, n) for n in range(2, 12)], session=session)
            await asyncio.sleep(0)
            bulk, sent[:] = list(sent), []
            await session.commit()
            await asyncio.sleep(0)
        assert len(one) == 1 and one[0].startswith("WITH ins AS (INSERT"), one
        assert len(bulk) == 1 and "INSERT" in bulk[0], bulk
        assert [query.strip(" ;").upper() for query in sent] == ["COMMIT"], "the query log sees the caller's COMMIT"
        for outcome in [single, *many]:
            assert outcome.created and await service.get_task(outcome.id) is not None, "committed with the caller's"

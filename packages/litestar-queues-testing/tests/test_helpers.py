"""The user-facing test helpers of litestar_queues.testing."""

from __future__ import annotations

import pytest

from litestar_queues import QueueConfig, QueueService, TaskRegistry, TaskStatus, task
from litestar_queues.testing import assert_enqueued, assert_not_enqueued, enqueued, run_until_empty

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_helpers_find_calls_and_run_the_queue() -> None:
    registry = TaskRegistry()

    @task("welcome", registry=registry)
    async def welcome(email: str, *, vip: bool = False) -> str:
        return email

    @task("unused", registry=registry)
    async def unused() -> None: ...

    async with QueueService(QueueConfig(), registry=registry) as service:
        await service.enqueue(welcome, "a@example.com")
        await service.enqueue(welcome, "b@example.com", vip=True)
        record = await assert_enqueued(service, welcome, "b@example.com", vip=True)
        assert record.kwargs == {"vip": True}
        await assert_enqueued(service, welcome)
        await assert_not_enqueued(service, unused)
        with pytest.raises(AssertionError, match="was not enqueued with args"):
            await assert_enqueued(service, welcome, "c@example.com")
        with pytest.raises(AssertionError, match="enqueued 2 time"):
            await assert_not_enqueued(service, welcome)
        assert await run_until_empty(service) == 2
        done = await enqueued(service, welcome, status=TaskStatus.COMPLETED)
        assert [r.result for r in done] == ["a@example.com", "b@example.com"]

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from litestar_queues import QueueConfig, QueueService, TaskRegistry, WorkerConfig
from litestar_queues.events import InMemoryQueueEventSink, QueueEventConfig

FAST_WORKER = WorkerConfig(poll_interval=0.05, heartbeat_interval=0.05, stale_threshold=1.0, maintenance_interval=0.1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def registry() -> TaskRegistry:
    return TaskRegistry()


@pytest.fixture
def sink() -> InMemoryQueueEventSink:
    return InMemoryQueueEventSink()


@pytest.fixture
def make_config(sink: InMemoryQueueEventSink) -> Callable[..., QueueConfig]:
    def make(**overrides: Any) -> QueueConfig:
        values: dict[str, Any] = {
            "queue_backend": "memory",
            "worker": FAST_WORKER,
            "event_config": QueueEventConfig(enabled=True, sink=sink),
        }
        values.update(overrides)
        return QueueConfig(**values)

    return make


@pytest.fixture
async def service(registry: TaskRegistry, make_config: Callable[..., QueueConfig]) -> AsyncIterator[QueueService]:
    async with QueueService(make_config(), registry=registry) as opened:
        yield opened

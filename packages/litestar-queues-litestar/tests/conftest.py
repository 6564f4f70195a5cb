from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime, timedelta, timezone

import pytest
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend

from litestar_queues.events import QueueEvent
from litestar_queues.records import new_record_id

MakeEvent = Callable[..., QueueEvent]
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


class RecordingChannelsBackend(MemoryChannelsBackend):
    """A memory backend that tells which channels are subscribed right now (to prove nothing leaks)."""

    def __init__(self, history: int = 100) -> None:
        super().__init__(history=history)
        self.active: set[str] = set()

    async def subscribe(self, channels: Iterable[str]) -> None:
        channels = list(channels)
        self.active.update(channels)
        await super().subscribe(channels)

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        channels = list(channels)
        self.active.difference_update(channels)
        await super().unsubscribe(channels)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_event() -> MakeEvent:
    """``make_event(task_id, n, event_key=None, type_="task.progress")``: the n-th event of a task, n s after EPOCH."""

    def make(task_id: str, number: int, *, event_key: str | None = None, type_: str = "task.progress") -> QueueEvent:
        return QueueEvent(
            id=new_record_id(),
            type=type_,
            scope="task",
            scope_key=task_id,
            task_id=task_id,
            task_name="tests.task",
            sequence=number,
            message=f"event {number}",
            occurred_at=EPOCH + timedelta(seconds=number),
            event_key=event_key,
        )

    return make


@pytest.fixture
def channels_backend() -> RecordingChannelsBackend:
    return RecordingChannelsBackend(history=100)


@pytest.fixture
async def channels(channels_backend: RecordingChannelsBackend) -> AsyncIterator[ChannelsPlugin]:
    plugin = ChannelsPlugin(channels_backend, arbitrary_channels_allowed=True)
    async with plugin:
        yield plugin

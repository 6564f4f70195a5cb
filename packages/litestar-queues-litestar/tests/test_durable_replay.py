"""Subscriptions replay a task's channel from the queue backend's durable event history, then go live."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import anyio
import pytest
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend

from litestar_queues import QueueConfig, QueueService
from litestar_queues.events import ChannelsQueueEventSink, EventPage, QueueChannels, QueueEvent, QueueEventConfig
from litestar_queues.litestar import QueueEventMessage, QueueEventSubscription
from litestar_queues.litestar import subscription as subscription_module

MakeEvent = Callable[..., QueueEvent]
TASK = QueueChannels.task("t1")

pytestmark = pytest.mark.anyio


class HistorylessChannelsBackend(MemoryChannelsBackend):
    """A Channels backend that keeps no history, as Redis pub/sub (its ``get_history`` is not implemented)."""

    async def get_history(self, channel: str, limit: int | None = None) -> list[bytes]:
        raise NotImplementedError("This backend does not support history")


@pytest.fixture
async def silent_channels() -> AsyncIterator[ChannelsPlugin]:
    """Channels that keep no history: whatever a subscriber replays came from the durable history."""
    plugin = ChannelsPlugin(HistorylessChannelsBackend(), arbitrary_channels_allowed=True)
    async with plugin:
        yield plugin


async def open_service(channels: ChannelsPlugin, *, history: bool = True) -> QueueService:
    events = QueueEventConfig(enabled=True, history=history, sink=ChannelsQueueEventSink(channels))
    service = QueueService(QueueConfig(event_config=events))
    await service.open()
    return service


async def take(messages: AsyncGenerator[QueueEventMessage, None], count: int) -> list[str]:
    with anyio.fail_after(5):
        return [(await anext(messages)).id for _ in range(count)]


async def nothing_more(messages: AsyncGenerator[QueueEventMessage, None]) -> None:
    with anyio.move_on_after(0.2) as waited:
        extra = await anext(messages)
    assert waited.cancelled_caught, f"unexpected event {extra!r}"


async def test_a_task_channel_replays_the_durable_history(
    silent_channels: ChannelsPlugin, make_event: MakeEvent
) -> None:
    service = await open_service(silent_channels)
    try:
        events = [make_event("t1", number) for number in range(1, 6)]
        for event in events:
            await service.publisher.publish(event)
        await service.publisher.flush()  # a publish queues its event; now every one is stored (and delivered)
        async with QueueEventSubscription(silent_channels, [TASK], service=service) as subscription:
            messages = aiter(subscription)
            assert await take(messages, 5) == [event.id for event in events]
            live = make_event("t1", 6)
            await service.publisher.publish(live)
            assert await take(messages, 1) == [live.id]
            await messages.aclose()
        async with QueueEventSubscription(silent_channels, [TASK], history=2, service=service) as subscription:
            messages = aiter(subscription)
            assert await take(messages, 2) == [events[4].id, live.id], "the most recent `history` events"
            await messages.aclose()
    finally:
        await service.close()


async def test_resume_after_last_event_id_from_the_durable_history(
    silent_channels: ChannelsPlugin, make_event: MakeEvent
) -> None:
    service = await open_service(silent_channels)
    try:
        events = [make_event("t1", number) for number in range(1, 5)]
        for event in events:
            await service.publisher.publish(event)
        await service.publisher.flush()  # a publish queues its event; now every one is stored (and delivered)
        resumed = QueueEventSubscription(silent_channels, [TASK], last_event_id=events[1].id, service=service)
        async with resumed as subscription:
            messages = aiter(subscription)
            assert await take(messages, 2) == [events[2].id, events[3].id]
            await nothing_more(messages)
            await messages.aclose()
    finally:
        await service.close()


async def test_a_resume_gets_every_stored_event_after_last_event_id_beyond_the_history_limit(
    silent_channels: ChannelsPlugin, make_event: MakeEvent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subscription_module, "_RESUME_PAGE", 2)  # the search crosses pages
    service = await open_service(silent_channels)
    try:
        events = [make_event("t1", number) for number in range(1, 9)]
        for event in [*events, make_event("t2", 1)]:
            await service.publisher.publish(event)
        await service.publisher.flush()
        resumed = QueueEventSubscription(
            silent_channels, [TASK], history=2, last_event_id=events[1].id, service=service
        )
        async with resumed as subscription:
            messages = aiter(subscription)
            assert await take(messages, 6) == [event.id for event in events[2:]], "history does not cap a resume"
            await nothing_more(messages)
            await messages.aclose()
        unknown = QueueEventSubscription(silent_channels, [TASK], history=2, last_event_id="gone", service=service)
        async with unknown as subscription:
            messages = aiter(subscription)
            assert await take(messages, 2) == [events[6].id, events[7].id], "an unknown id: the latest `history`"
            await nothing_more(messages)
            await messages.aclose()
    finally:
        await service.close()


async def test_an_event_published_while_the_history_is_read_arrives_once(
    silent_channels: ChannelsPlugin, make_event: MakeEvent
) -> None:
    service = await open_service(silent_channels)
    try:
        stored = make_event("t1", 1)
        racing = make_event("t1", 2)
        await service.publisher.publish(stored)
        await service.publisher.flush()
        reading = service.list_events

        async def publish_then_read(**query: Any) -> EventPage:
            # The subscription is live by now: `racing` is queued while the history is read, and reaches the
            # subscription once, whether the read already sees it stored or it arrives live after the read.
            await service.publisher.publish(racing)
            return await reading(**query)

        service.list_events = publish_then_read  # type: ignore[method-assign]
        async with QueueEventSubscription(silent_channels, [TASK], service=service) as subscription:
            messages = aiter(subscription)
            assert await take(messages, 2) == [stored.id, racing.id]
            await nothing_more(messages)
            await messages.aclose()
    finally:
        await service.close()


async def test_other_channels_replay_the_channels_history(channels: ChannelsPlugin, make_event: MakeEvent) -> None:
    service = await open_service(channels)
    try:
        custom = QueueChannels.custom("tenant-1")
        event = make_event("t1", 1)
        await service.publisher.publish(event, [custom])
        async with QueueEventSubscription(channels, [custom], service=service) as subscription:
            messages = aiter(subscription)
            assert await take(messages, 1) == [event.id]
            await messages.aclose()
    finally:
        await service.close()


async def test_without_durable_history_a_task_channel_replays_the_channels_history(
    channels: ChannelsPlugin, make_event: MakeEvent
) -> None:
    service = await open_service(channels, history=False)
    try:
        event = make_event("t1", 1)
        await service.publisher.publish(event)
        async with QueueEventSubscription(channels, [TASK], service=service) as subscription:
            messages = aiter(subscription)
            assert await take(messages, 1) == [event.id]
            await messages.aclose()
    finally:
        await service.close()


async def test_a_channels_backend_without_history_replays_nothing_and_streams_live(
    silent_channels: ChannelsPlugin, make_event: MakeEvent
) -> None:
    await ChannelsQueueEventSink(silent_channels).publish(make_event("t1", 1), [TASK])
    async with QueueEventSubscription(silent_channels, [TASK]) as subscription:  # the default history, no service
        messages = aiter(subscription)
        live = make_event("t1", 2)
        await ChannelsQueueEventSink(silent_channels).publish(live, [TASK])
        assert await take(messages, 1) == [live.id]
        await messages.aclose()

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any

import anyio
import pytest
from litestar.channels import ChannelsPlugin

from litestar_queues.events import ChannelsQueueEventSink, QueueChannels, QueueEvent
from litestar_queues.litestar import QueueEventMessage, QueueEventSubscription

MakeEvent = Callable[..., QueueEvent]
TASK = QueueChannels.task("t1")

pytestmark = pytest.mark.anyio


async def publish(channels: ChannelsPlugin, *events: QueueEvent, to: tuple[str, ...] = (TASK,)) -> None:
    sink = ChannelsQueueEventSink(channels)
    for event in events:
        await sink.publish(event, list(to))


async def take(messages: AsyncGenerator[QueueEventMessage, None], count: int) -> list[str]:
    """The ids of the next ``count`` messages (failing after 5 s instead of hanging)."""
    with anyio.fail_after(5):
        return [(await anext(messages)).id for _ in range(count)]


async def test_history_first_then_live_in_order(channels: ChannelsPlugin, make_event: MakeEvent) -> None:
    early = [make_event("t1", n) for n in (1, 2)]
    await publish(channels, *early)
    async with QueueEventSubscription(channels, [TASK]) as subscription:
        messages = aiter(subscription)
        assert await take(messages, 2) == [event.id for event in early]
        late = make_event("t1", 3)
        await publish(channels, late)
        assert await take(messages, 1) == [late.id]
        await messages.aclose()


async def test_history_is_bounded(channels: ChannelsPlugin, make_event: MakeEvent) -> None:
    events = [make_event("t1", n) for n in range(1, 6)]
    await publish(channels, *events)
    async with QueueEventSubscription(channels, [TASK], history=2) as subscription:
        messages = aiter(subscription)
        assert await take(messages, 2) == [events[3].id, events[4].id]
        newest = make_event("t1", 6)
        await publish(channels, newest)
        assert await take(messages, 1) == [newest.id]
        await messages.aclose()


async def test_no_history_when_zero(channels: ChannelsPlugin, make_event: MakeEvent) -> None:
    await publish(channels, make_event("t1", 1))
    async with QueueEventSubscription(channels, [TASK], history=0) as subscription:
        messages = aiter(subscription)
        live = make_event("t1", 2)
        await publish(channels, live)
        assert await take(messages, 1) == [live.id]
        await messages.aclose()


async def test_each_event_key_at_most_once(channels: ChannelsPlugin, make_event: MakeEvent) -> None:
    first = make_event("t1", 1, event_key="step-1")
    retried = make_event("t1", 2, event_key="step-1")  # a retry re-emitting the same logical event
    other = make_event("t1", 3)
    await publish(channels, first)
    async with QueueEventSubscription(channels, [TASK]) as subscription:
        messages = aiter(subscription)
        await publish(channels, retried, first, other, other)
        assert await take(messages, 2) == [first.id, other.id]
        await messages.aclose()


async def test_resumes_after_last_event_id(channels: ChannelsPlugin, make_event: MakeEvent) -> None:
    events = [make_event("t1", n) for n in range(1, 5)]
    await publish(channels, *events)
    async with QueueEventSubscription(channels, [TASK], last_event_id=events[1].id) as subscription:
        messages = aiter(subscription)
        assert await take(messages, 2) == [events[2].id, events[3].id]
        await publish(channels, events[0])  # a live copy of an event the client already had
        final = make_event("t1", 5)
        await publish(channels, final)
        assert await take(messages, 1) == [final.id]
        await messages.aclose()


async def test_unknown_last_event_id_replays_everything_kept(channels: ChannelsPlugin, make_event: MakeEvent) -> None:
    events = [make_event("t1", n) for n in range(1, 3)]
    await publish(channels, *events)
    async with QueueEventSubscription(channels, [TASK], last_event_id="long-gone") as subscription:
        messages = aiter(subscription)
        assert await take(messages, 2) == [event.id for event in events]
        await messages.aclose()


async def test_several_channels_merge_by_time_and_dedup(channels: ChannelsPlugin, make_event: MakeEvent) -> None:
    other_task = QueueChannels.task("t2")
    a1, b2, a3 = make_event("t1", 1), make_event("t2", 2), make_event("t1", 3)
    await publish(channels, a1, a3)
    await publish(channels, b2, to=(other_task,))
    both = make_event("t1", 4)
    await publish(channels, both, to=(TASK, QueueChannels.global_()))
    async with QueueEventSubscription(channels, [TASK, other_task, QueueChannels.global_()]) as subscription:
        messages = aiter(subscription)
        assert await take(messages, 4) == [a1.id, b2.id, a3.id, both.id]
        await messages.aclose()


async def test_other_messages_on_the_channel_are_skipped(channels: ChannelsPlugin, make_event: MakeEvent) -> None:
    await channels.wait_published(b"not a queue event", [TASK])
    await channels.wait_published({"id": "x"}, [TASK])
    event = make_event("t1", 1)
    await publish(channels, event)
    async with QueueEventSubscription(channels, [TASK]) as subscription:
        messages = aiter(subscription)
        assert await take(messages, 1) == [event.id]
        await messages.aclose()


async def test_leaving_unsubscribes_and_ends_iteration(channels: ChannelsPlugin, channels_backend: Any) -> None:
    subscription = QueueEventSubscription(channels, [TASK, QueueChannels.global_()])
    async with subscription:
        assert channels_backend.active == {TASK, QueueChannels.global_()}
        received = [message async for message in _until_closed(subscription)]
    assert received == []
    assert channels_backend.active == set()


async def _until_closed(subscription: QueueEventSubscription) -> AsyncGenerator[QueueEventMessage, None]:
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(subscription.close)
        async for message in subscription:
            yield message


async def test_cancelled_reader_still_unsubscribes(channels: ChannelsPlugin, channels_backend: Any) -> None:
    with anyio.move_on_after(0.05):
        async with QueueEventSubscription(channels, [TASK]) as subscription:
            async for _ in subscription:
                pass
    assert channels_backend.active == set()


def test_arguments_are_checked(channels_backend: Any) -> None:
    plugin = ChannelsPlugin(channels_backend, arbitrary_channels_allowed=True)
    with pytest.raises(ValueError, match="non-empty list"):
        QueueEventSubscription(plugin, TASK)
    with pytest.raises(ValueError, match="non-empty list"):
        QueueEventSubscription(plugin, [])
    with pytest.raises(ValueError, match="history"):
        QueueEventSubscription(plugin, [TASK], history=-1)


async def test_iterating_before_entering_is_an_error(channels: ChannelsPlugin) -> None:
    with pytest.raises(RuntimeError, match="async with"):
        await anext(aiter(QueueEventSubscription(channels, [TASK])))


async def _backlog_settled(subscription: QueueEventSubscription, expected: int) -> None:
    """Wait until ``expected`` live events reached the subscription's backlog (kept or dropped)."""
    with anyio.fail_after(5):
        while len(subscription._backlog) + subscription._dropped < expected:
            await anyio.sleep(0.005)


async def test_a_slow_reader_gets_a_gap_event_and_the_newest_events(
    channels: ChannelsPlugin, make_event: MakeEvent
) -> None:
    events = [make_event("t1", n) for n in range(1, 21)]
    async with QueueEventSubscription(channels, [TASK], history=0, max_backlog=5) as subscription:
        await publish(channels, *events)
        await _backlog_settled(subscription, 5 + 15)
        assert len(subscription._backlog) == 5, "memory held for a reader that does not read stays bounded"
        messages = aiter(subscription)
        with anyio.fail_after(5):
            gap = QueueEvent.from_json((await anext(messages)).data)
        assert (gap.type, gap.payload, gap.level) == ("stream.gap", {"dropped": 15}, "warning")
        assert await take(messages, 5) == [event.id for event in events[15:]]
        later = make_event("t1", 21)
        await publish(channels, later)
        assert await take(messages, 1) == [later.id], "after the gap, live events flow again with no new gap"
        await messages.aclose()


def test_max_backlog_must_be_positive(channels_backend: Any) -> None:
    plugin = ChannelsPlugin(channels_backend, arbitrary_channels_allowed=True)
    with pytest.raises(ValueError, match="max_backlog"):
        QueueEventSubscription(plugin, [TASK], max_backlog=0)

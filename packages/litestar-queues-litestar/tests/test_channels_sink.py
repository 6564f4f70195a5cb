from __future__ import annotations

from collections.abc import Callable

import anyio
import msgspec
import pytest
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend

from litestar_queues.errors import ConfigurationError
from litestar_queues.events import (
    ChannelsQueueEventSink,
    QueueChannels,
    QueueEvent,
    QueueEventConfig,
    QueueEventPublisher,
)
from litestar_queues.litestar.channels import channels_plugin_for

MakeEvent = Callable[..., QueueEvent]

pytestmark = pytest.mark.anyio


async def test_publishes_wire_json_through_a_plugin(channels: ChannelsPlugin, make_event: MakeEvent) -> None:
    event = make_event("t1", 1)
    async with channels.start_subscription(["a", "b"]) as subscriber:
        await ChannelsQueueEventSink(channels).publish(event, ["a", "b"])
        events = subscriber.iter_events()
        with anyio.fail_after(5):
            received = [await anext(events), await anext(events)]
        await events.aclose()
    assert received == [event.to_json(), event.to_json()]
    assert msgspec.json.decode(received[0])["occurredAt"] == "2026-01-01T00:00:01Z"


async def test_publishes_to_a_bare_backend(make_event: MakeEvent) -> None:
    backend = MemoryChannelsBackend(history=10)
    await backend.on_startup()
    try:
        event = make_event("t1", 1)
        await ChannelsQueueEventSink(backend).publish(event, [QueueChannels.task("t1")])
        assert await backend.get_history(QueueChannels.task("t1")) == [event.to_json()]
    finally:
        await backend.on_shutdown()


def test_rejects_something_else() -> None:
    with pytest.raises(ConfigurationError, match="ChannelsPlugin or ChannelsBackend"):
        ChannelsQueueEventSink(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="ChannelsPlugin or ChannelsBackend"):
        channels_plugin_for("redis://")  # type: ignore[arg-type]


async def test_core_publisher_builds_this_sink_for_channels_backend(
    channels: ChannelsPlugin, channels_backend: MemoryChannelsBackend, make_event: MakeEvent
) -> None:
    publisher = QueueEventPublisher(QueueEventConfig(enabled=True, channels_backend=channels))
    assert [type(sink) for sink in publisher.sinks] == [ChannelsQueueEventSink]
    event = make_event("t2", 1)
    await publisher.publish(event)
    history = await channels_backend.get_history(QueueChannels.task("t2"))
    assert [QueueEvent.from_json(data) for data in history] == [event]


async def test_channels_plugin_for_wraps_a_backend_and_keeps_a_plugin(channels: ChannelsPlugin) -> None:
    assert channels_plugin_for(channels) is channels
    wrapped = channels_plugin_for(MemoryChannelsBackend())
    assert isinstance(wrapped, ChannelsPlugin)

"""Queue events: the ``QueueEvent`` envelope, channels, sinks, the publisher and the task helpers.

``stream_queue_events``, ``sse_queue_events`` and ``ChannelsQueueEventSink`` need Litestar and live in
``litestar-queues-litestar``; they are importable from here when it is installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar_queues.events.channels import CHANNEL_PREFIX, QueueChannels
from litestar_queues.events.config import QueueEventConfig
from litestar_queues.events.envelope import (
    LIFECYCLE_EVENT_TYPES,
    SCHEMA_VERSION,
    EventScope,
    QueueEvent,
    QueueEventType,
)
from litestar_queues.events.helpers import publish_task_event, publish_task_log, publish_task_progress
from litestar_queues.events.history import (
    EventFilter,
    EventPage,
    EventPosition,
    event_cursor,
    event_position,
    parse_event_cursor,
)
from litestar_queues.events.publisher import QueueEventPublisher
from litestar_queues.events.sinks import InMemoryQueueEventSink, QueueEventSink
from litestar_queues.lazy import load_lazy

if TYPE_CHECKING:
    from litestar_queues.litestar.channels import ChannelsQueueEventSink
    from litestar_queues.litestar.streaming import sse_queue_events, stream_queue_events

__all__ = (
    "CHANNEL_PREFIX",
    "LIFECYCLE_EVENT_TYPES",
    "SCHEMA_VERSION",
    "ChannelsQueueEventSink",
    "EventFilter",
    "EventPage",
    "EventPosition",
    "EventScope",
    "InMemoryQueueEventSink",
    "QueueChannels",
    "QueueEvent",
    "QueueEventConfig",
    "QueueEventPublisher",
    "QueueEventSink",
    "QueueEventType",
    "event_cursor",
    "event_position",
    "parse_event_cursor",
    "publish_task_event",
    "publish_task_log",
    "publish_task_progress",
    "sse_queue_events",
    "stream_queue_events",
)

_LAZY = {
    "ChannelsQueueEventSink": "litestar_queues.litestar.channels",
    "stream_queue_events": "litestar_queues.litestar.streaming",
    "sse_queue_events": "litestar_queues.litestar.streaming",
}


def __getattr__(name: str) -> Any:
    return load_lazy(__name__, name, _LAZY)

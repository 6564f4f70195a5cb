"""Queue events: the ``QueueEvent`` envelope, channels, sinks, the publisher and the task helpers.

``stream_queue_events``, ``sse_queue_events`` and ``ChannelsQueueEventSink`` need Litestar and live in
``litestar-queues-litestar``; they are importable from here when it is installed.
"""

from __future__ import annotations

import importlib
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
from litestar_queues.events.publisher import QueueEventPublisher
from litestar_queues.events.sinks import InMemoryQueueEventSink, QueueEventSink

if TYPE_CHECKING:
    from litestar_queues.litestar.channels import ChannelsQueueEventSink
    from litestar_queues.litestar.streaming import sse_queue_events, stream_queue_events

__all__ = (
    "CHANNEL_PREFIX",
    "LIFECYCLE_EVENT_TYPES",
    "SCHEMA_VERSION",
    "ChannelsQueueEventSink",
    "EventScope",
    "InMemoryQueueEventSink",
    "QueueChannels",
    "QueueEvent",
    "QueueEventConfig",
    "QueueEventPublisher",
    "QueueEventSink",
    "QueueEventType",
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
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name not in {"litestar", "litestar_queues.litestar", module_name}:
            raise  # installed, but broken: show the real error
        raise ImportError(
            f"litestar_queues.events.{name} needs the Litestar integration: pip install litestar-queues "
            f"(or litestar-queues-litestar)"
        ) from exc
    return getattr(module, name)

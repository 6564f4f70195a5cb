"""Event settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar_queues.events.sinks import QueueEventSink

__all__ = ("QueueEventConfig",)


@dataclass(frozen=True, kw_only=True)
class QueueEventConfig:
    """How task events are published. Disabled by default.

    Attributes:
        enabled: Publish events at all.
        sink: A sink receiving every event (e.g. ``InMemoryQueueEventSink`` in tests).
        channels_backend: An app-owned Litestar Channels backend or ``ChannelsPlugin``; events are published to
            it as JSON (needs ``litestar-queues-litestar``). Used together with ``sink`` when both are given.
        publish_global_lifecycle: Also publish lifecycle events to ``litestar_queues:global:events``.
        publish_enqueued: Also publish ``task.enqueued`` when a record is created (off so that a task's own
            channel starts with ``task.started``).
        strict: A publish failure fails the task's execution path instead of logging a warning.
    """

    enabled: bool = False
    sink: QueueEventSink | None = None
    channels_backend: Any = None
    publish_global_lifecycle: bool = False
    publish_enqueued: bool = False
    strict: bool = False

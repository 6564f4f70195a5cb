"""Event settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar_queues.errors import ConfigurationError
from litestar_queues.events.sinks import QueueEventSink
from litestar_queues.limits import check_seconds

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
        strict: A publish failure fails the task's execution path instead of logging a warning. With the history
            on, a strict publish also waits until its event is stored and handed to every sink.
        history: Also store every event in the queue backend's durable event history (the backend must declare
            ``Capability.EVENT_HISTORY``: memory, Redis, Valkey and the SQL backends do). Streams then replay a
            job's stored events before its live ones, and ``QueueService.list_events`` queries them. A publish
            queues its event; one writer per process stores the queued events in batches shared by every task
            running in the process, and hands each batch to the sinks once it is stored, in publish order.
        history_retention: Seconds stored events are kept (pruned by the workers' maintenance, in bounded
            batches); ``None`` keeps them.
    """

    enabled: bool = False
    sink: QueueEventSink | None = None
    channels_backend: Any = None
    publish_global_lifecycle: bool = False
    publish_enqueued: bool = False
    strict: bool = False
    history: bool = False
    history_retention: float | None = 7 * 24 * 3600.0

    def __post_init__(self) -> None:
        """Check the history settings.

        Raises:
            ConfigurationError: ``history`` without ``enabled``, or a ``history_retention`` that is not a positive
                number of seconds.
        """
        if self.history and not self.enabled:
            raise ConfigurationError("QueueEventConfig(history=True) stores published events: set enabled=True too")
        if self.history_retention is not None:
            retention = check_seconds(
                self.history_retention,
                "QueueEventConfig.history_retention (None keeps stored events)",
                positive=True,
            )
            object.__setattr__(self, "history_retention", retention)

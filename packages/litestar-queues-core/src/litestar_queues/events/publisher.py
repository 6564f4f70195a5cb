"""Resolve an event's channels and hand it to the configured sinks, best-effort or strict."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from litestar_queues.errors import ConfigurationError
from litestar_queues.events.channels import QueueChannels
from litestar_queues.events.config import QueueEventConfig
from litestar_queues.events.envelope import LIFECYCLE_EVENT_TYPES, QueueEvent
from litestar_queues.events.sinks import QueueEventSink
from litestar_queues.records import TaskRecord

__all__ = ("QueueEventPublisher",)

logger = logging.getLogger("litestar_queues.events")


def _channels_sink(channels_backend: Any) -> QueueEventSink:
    try:
        module = importlib.import_module("litestar_queues.litestar.channels")
    except ImportError as exc:
        raise ConfigurationError(
            "QueueEventConfig(channels_backend=...) needs the Litestar integration: pip install litestar-queues"
        ) from exc
    sink: QueueEventSink = module.ChannelsQueueEventSink(channels_backend)
    return sink


class QueueEventPublisher:
    """Publishes events to every configured sink.

    Channels: the canonical channel of the event's scope, then ``litestar_queues:global:events`` for lifecycle
    events when ``publish_global_lifecycle`` is on, then any explicit channels, without duplicates.
    """

    __slots__ = ("config", "enabled", "sinks")

    def __init__(
        self, config: QueueEventConfig | None = None, *, sinks: Sequence[QueueEventSink] | None = None
    ) -> None:
        self.config = config or QueueEventConfig()
        if sinks is None:
            built: list[QueueEventSink] = []
            if self.config.sink is not None:
                built.append(self.config.sink)
            if self.config.channels_backend is not None:
                built.append(_channels_sink(self.config.channels_backend))
            sinks = built
        self.sinks: tuple[QueueEventSink, ...] = tuple(sinks)
        self.enabled = self.config.enabled and bool(self.sinks)

    def channels_for(self, event: QueueEvent, extra: Iterable[str] = ()) -> list[str]:
        """The channels ``event`` is published to."""
        channels = [QueueChannels.for_scope(event.scope, event.scope_key)]
        if self.config.publish_global_lifecycle and event.type in LIFECYCLE_EVENT_TYPES:
            channels.append(QueueChannels.global_())
        for channel in extra:
            if channel not in channels:
                channels.append(channel)
        return channels

    async def publish(self, event: QueueEvent, channels: Iterable[str] = ()) -> None:
        """Publish ``event``.

        Raises:
            Exception: whatever a sink raised, only when ``strict`` is on; otherwise failures are logged.
        """
        if not self.enabled:
            return
        resolved = self.channels_for(event, channels)
        for sink in self.sinks:
            try:
                await sink.publish(event, resolved)
            except Exception:
                if self.config.strict:
                    raise
                logger.warning("publishing %s event %s failed", event.type, event.id, exc_info=True)

    async def publish_task_event(
        self,
        record: TaskRecord,
        event_type: str,
        *,
        worker_id: str | None = None,
        sequence: int | None = None,
        channels: Iterable[str] = (),
        **fields: Any,
    ) -> None:
        """Publish a task-scoped event describing ``record`` (``fields`` are other ``QueueEvent`` fields)."""
        if not self.enabled:
            return
        event = QueueEvent(
            type=event_type,
            scope="task",
            scope_key=record.id,
            task_id=record.id,
            task_name=record.task_name,
            queue=record.queue,
            worker_id=worker_id,
            execution_backend=record.execution_backend,
            execution_profile=record.execution_profile,
            attempt=record.attempts,
            sequence=sequence,
            **fields,
        )
        await self.publish(event, channels)

"""Resolve an event's channels, store it in the event history, and hand it to the configured sinks, best-effort or
strict."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from litestar_queues.batching import WriteBatcher
from litestar_queues.errors import ConfigurationError
from litestar_queues.events.channels import QueueChannels
from litestar_queues.events.config import QueueEventConfig
from litestar_queues.events.envelope import LIFECYCLE_EVENT_TYPES, QueueEvent
from litestar_queues.events.sinks import QueueEventSink
from litestar_queues.limits import check_event
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
    """Publishes events to every configured sink, after storing them in the event history when it is on.

    Channels: the canonical channel of the event's scope, then ``litestar_queues:global:events`` for lifecycle
    events when ``publish_global_lifecycle`` is on, then any explicit channels, without duplicates.

    History: once :meth:`store_with` gave it the backend's ``append_events``, every event is stored (in batches
    shared by every publishing task) before any sink gets it, so a subscriber that subscribes to a channel and then
    reads the history misses no event: one published before it subscribed was stored before that.
    """

    __slots__ = ("_history", "config", "enabled", "sinks")

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
        self._history: WriteBatcher[QueueEvent] | None = None
        self.enabled = self.config.enabled and bool(self.sinks)

    @property
    def stores_history(self) -> bool:
        """Whether published events are stored in the event history."""
        return self._history is not None

    def store_with(self, append: Callable[[list[QueueEvent]], Awaitable[None]] | None, *, max_batch: int = 500) -> None:
        """Store every event published from now on with ``append`` (a backend's ``append_events``); ``None`` stops.

        Args:
            append: Stores a batch of events.
            max_batch: Most events per call of ``append``.
        """
        self._history = None if append is None else WriteBatcher(append, max_batch=max_batch)
        self.enabled = self.config.enabled and (bool(self.sinks) or self._history is not None)

    async def flush(self) -> None:
        """Wait until every event published so far is stored in the history."""
        if self._history is not None:
            await self._history.flush()

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
        """Store ``event`` in the history (when on), then publish it to every sink.

        Raises:
            ConfigurationError: with the history on, a name of ``event`` cannot be stored (see
                :func:`~litestar_queues.limits.check_event`); nothing is stored or published.
            SerializationError: with the history on, a number or the payload of ``event`` cannot be stored as it is.
            Exception: whatever storing or a sink raised, only when ``strict`` is on; otherwise failures are logged.
        """
        if not self.enabled:
            return
        resolved = self.channels_for(event, channels)
        history = self._history
        if history is not None:
            check_event(event)
            try:
                await history.submit(event)
            except Exception:
                if self.config.strict:
                    raise
                logger.warning("storing %s event %s in the event history failed", event.type, event.id, exc_info=True)
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

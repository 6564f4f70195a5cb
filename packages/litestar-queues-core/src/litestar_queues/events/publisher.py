"""Resolve an event's channels, store it in the event history, and hand it to the configured sinks, best-effort or
strict."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from typing import Any, TypeAlias

from litestar_queues.batching import Failures, WriteBatcher
from litestar_queues.errors import ConfigurationError
from litestar_queues.events.channels import QueueChannels
from litestar_queues.events.config import QueueEventConfig
from litestar_queues.events.envelope import LIFECYCLE_EVENT_TYPES, QueueEvent
from litestar_queues.events.sinks import QueueEventSink
from litestar_queues.limits import check_event
from litestar_queues.records import Lease, TaskProgress, TaskRecord

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


Progress: TypeAlias = tuple[Lease, TaskProgress]
"""A running attempt's progress, stored on its record under its fence."""
Append: TypeAlias = Callable[[list[QueueEvent], list[Progress]], Awaitable[None]]
"""Stores a batch of events and of progress (a backend's ``append_events_with_progress``)."""
_Item: TypeAlias = tuple[QueueEvent, list[str], "Progress | None"]

_MOST_UNWRITTEN_BATCHES = 4
"""With this many batches of events waiting for the history writer, a publish waits for its own event."""


class QueueEventPublisher:
    """Publishes events to every configured sink, after storing them in the event history when it is on.

    Channels: the canonical channel of the event's scope, then ``litestar_queues:global:events`` for lifecycle
    events when ``publish_global_lifecycle`` is on, then any explicit channels, without duplicates.

    History: once :meth:`store_with` gave it the backend's ``append_events_with_progress``, events go through one
    writer per
    publisher: it stores what accumulated as one batch (shared by every publishing task), then hands that batch's
    events to the sinks in publish order, then takes the next batch. So every event is stored before any sink gets
    it (a subscriber that subscribes to a channel and then reads the history misses no event: one published before
    it subscribed was stored before that), and one task's events reach a sink in order. A publish returns once its
    event is queued, without waiting for the write; with ``strict`` on, or when the writer is
    ``_MOST_UNWRITTEN_BATCHES`` batches behind, it waits until its event is stored and handed to every sink. A
    ``task.progress`` event published with its attempt's progress stores that progress in the same write (one round
    trip, where the backend can: :attr:`stores_progress`), and its publish waits for that write.
    """

    __slots__ = ("_history", "_most_unwritten", "_with_progress", "config", "enabled", "sinks")

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
        self._history: WriteBatcher[_Item] | None = None
        self._most_unwritten = 0
        self._with_progress = False
        self.enabled = self.config.enabled and bool(self.sinks)

    @property
    def stores_history(self) -> bool:
        """Whether published events are stored in the event history."""
        return self._history is not None

    @property
    def stores_progress(self) -> bool:
        """Whether the history writer also stores the progress published with ``task.progress`` events."""
        return self._history is not None and self._with_progress

    def store_with(self, append: Append | None, *, max_batch: int = 500, with_progress: bool = False) -> None:
        """Store every event published from now on with ``append`` (a backend's ``append_events_with_progress``);
        ``None`` stops.

        Args:
            append: Stores a batch of events and the progress published with them.
            max_batch: Most events per call of ``append``.
            with_progress: ``append`` stores events and progress in one round trip (the backend's
                ``stores_progress_with_events``): publish progress with its event (:attr:`stores_progress`).
        """
        self._history = (
            None if append is None else WriteBatcher(partial(self._store_and_deliver, append), max_batch=max_batch)
        )
        self._most_unwritten = _MOST_UNWRITTEN_BATCHES * max_batch
        self._with_progress = with_progress
        self.enabled = self.config.enabled and (bool(self.sinks) or self._history is not None)

    async def flush(self) -> None:
        """Wait until every event published so far is stored in the history and handed to the sinks."""
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

    async def publish(
        self, event: QueueEvent, channels: Iterable[str] = (), *, progress: Progress | None = None
    ) -> None:
        """Publish ``event`` to every sink; with the history on, queue it for the writer, which stores it first.

        Args:
            event: The event.
            channels: Channels besides the event's own.
            progress: With the history on, an attempt's progress stored in the same write as ``event``; the publish
                then waits for that write. Ignored with the history off (the caller saves it).

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
            if progress is not None or self.config.strict or history.backlog >= self._most_unwritten:
                await history.submit((event, resolved, progress))
            else:
                history.add((event, resolved, progress))
            return
        failure = await self._deliver(event, resolved)
        if failure is not None:
            raise failure

    async def _deliver(self, event: QueueEvent, channels: Sequence[str]) -> Exception | None:
        """Hand ``event`` to every sink; with ``strict``, stop at the first failure and return it, else log each."""
        for sink in self.sinks:
            try:
                await sink.publish(event, channels)
            except Exception as error:
                if self.config.strict:
                    return error
                logger.warning("publishing %s event %s failed", event.type, event.id, exc_info=True)
        return None

    async def _store_and_deliver(self, append: Append, batch: list[_Item]) -> Failures:
        """Store a batch of events (and the progress published with them), then hand each event to every sink in
        order; the failure of each (``strict``) or ``None``. Without ``strict`` failures are logged, and the sinks get
        the events even if storing failed."""
        strict = self.config.strict
        try:
            await append([event for event, _, _ in batch], [progress for _, _, progress in batch if progress])
        except Exception as error:
            if strict:
                return [error] * len(batch)
            logger.warning("storing %d events in the event history failed", len(batch), exc_info=True)
        failures: list[BaseException | None] | None = None
        for index, (event, channels, _) in enumerate(batch):
            failure = await self._deliver(event, channels)
            if failure is not None:
                if failures is None:
                    failures = [None] * len(batch)
                failures[index] = failure
        return failures

    async def publish_task_event(
        self,
        record: TaskRecord,
        event_type: str,
        *,
        worker_id: str | None = None,
        sequence: int | None = None,
        channels: Iterable[str] = (),
        progress: Progress | None = None,
        **fields: Any,
    ) -> None:
        """Publish a task-scoped event describing ``record`` (``fields`` are other ``QueueEvent`` fields; ``progress``
        as :meth:`publish` takes it)."""
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
        await self.publish(event, channels, progress=progress)

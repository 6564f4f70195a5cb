"""Where events go: the sink protocol and the in-memory sink for tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from litestar_queues.events.envelope import QueueEvent

__all__ = ("InMemoryQueueEventSink", "QueueEventSink")


@runtime_checkable
class QueueEventSink(Protocol):
    """Receives each event once, with every channel it belongs to."""

    async def publish(self, event: QueueEvent, channels: Sequence[str]) -> None:
        """Deliver ``event`` to ``channels``; raise on failure (the publisher decides what a failure means)."""
        ...


class InMemoryQueueEventSink:
    """Keeps events in memory, in publish order: ``sink.events`` and ``sink.published`` (event, channels)."""

    __slots__ = ("published",)

    def __init__(self) -> None:
        self.published: list[tuple[QueueEvent, tuple[str, ...]]] = []

    @property
    def events(self) -> list[QueueEvent]:
        """Every event published so far."""
        return [event for event, _ in self.published]

    def events_for(self, channel: str) -> list[QueueEvent]:
        """Events published to ``channel``."""
        return [event for event, channels in self.published if channel in channels]

    def clear(self) -> None:
        """Forget everything published."""
        self.published.clear()

    async def publish(self, event: QueueEvent, channels: Sequence[str]) -> None:
        """Record the event."""
        self.published.append((event, tuple(channels)))

"""A subscription to queue event channels: bounded history replay, resume after an event id, deduplication.

Both transports (websocket and Server-Sent Events) read events through :class:`QueueEventSubscription`, so
they deliver the same events in the same order.

History: a task's channel (``QueueChannels.task(id)``) is replayed from the queue backend's durable event history
when the service stores it (``QueueEventConfig(history=True)``), so a page opened after the job finished still
gets its events (the most recent ``history``), and a client resuming after an event id gets every stored event
after it; any other channel (and every channel without durable history) from the Channels backend's own
history, where it keeps one (a backend without history, such as Redis pub/sub, replays nothing).

Ordering: the live subscription is opened *before* history is read, so an event published meanwhile is
either in the history (and its live copy is dropped as a duplicate) or newer than all of it (the publisher
stores an event in the durable history before it publishes it to a channel). History of several channels is
merged by ``occurredAt``.

Backlog: live events wait for the client in a buffer of at most ``max_backlog`` events per subscription, whatever
the app's ``ChannelsPlugin`` allows, so a client that stops reading cannot make the server hold an unbounded
queue. When the buffer is full the oldest waiting event is dropped, and the client receives a ``stream.gap``
event (``payload.dropped``: how many it missed) before the events that follow the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import AsyncGenerator, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
import msgspec
from litestar.channels import ChannelsPlugin, Subscriber

from litestar_queues.events import CHANNEL_PREFIX, QueueEvent, QueueEventType

if TYPE_CHECKING:
    from litestar_queues.service import QueueService

__all__ = (
    "DEFAULT_DEDUP_WINDOW",
    "DEFAULT_HISTORY",
    "DEFAULT_MAX_BACKLOG",
    "RESUME_SEARCH",
    "QueueEventMessage",
    "QueueEventSubscription",
)

logger = logging.getLogger("litestar_queues.litestar")

DEFAULT_HISTORY = 100
"""Events replayed per channel when a subscriber connects: the most recent ones of a task's durable history, or of
the Channels backend's history (which must keep at least this many)."""

DEFAULT_DEDUP_WINDOW = 10_000
"""Distinct event keys remembered per connection for deduplication."""

DEFAULT_MAX_BACKLOG = 1_000
"""Live events held per connection for a client that reads slower than they arrive; older ones are dropped."""

RESUME_SEARCH = 10_000
"""How far back (in stored events of the task) a resume looks for its ``last_event_id`` in the durable history."""
_RESUME_PAGE = 500


class _EventIdentity(msgspec.Struct, rename="camel"):
    """The few envelope fields a stream needs; other fields pass through untouched in the raw JSON."""

    id: str
    occurred_at: datetime
    event_key: str | None = None


_decode_identity = msgspec.json.Decoder(_EventIdentity).decode


class QueueEventMessage(msgspec.Struct, frozen=True):
    """One event as published: its id, its dedup key and the wire JSON."""

    id: str
    """``QueueEvent.id``: the SSE event id and what ``Last-Event-ID`` refers to."""
    dedup_key: str
    """``eventKey`` when set, else ``id``."""
    occurred_at: datetime
    data: bytes
    """The event's JSON exactly as published."""

    @classmethod
    def gap(cls, dropped: int) -> QueueEventMessage:
        """The ``stream.gap`` event telling a client that ``dropped`` events were dropped before the next one."""
        event = QueueEvent(
            type=QueueEventType.STREAM_GAP,
            scope="global",
            level="warning",
            message=f"{dropped} event(s) were dropped: this subscriber read slower than they arrived",
            payload={"dropped": dropped},
        )
        return cls(event.id, event.id, event.occurred_at, event.to_json())

    @classmethod
    def of(cls, event: QueueEvent) -> QueueEventMessage:
        """The message of an event read from the durable history."""
        return cls(event.id, event.dedup_key, event.occurred_at, event.to_json())

    @classmethod
    def parse(cls, data: bytes) -> QueueEventMessage | None:
        """Read a published message; ``None`` when it is not a queue event (something else shares the channel)."""
        try:
            identity = _decode_identity(data)
        except msgspec.DecodeError:
            logger.debug("ignoring a channel message that is not a queue event: %r", data[:200])
            return None
        return cls(identity.id, identity.event_key or identity.id, identity.occurred_at, data)


class _SeenKeys:
    """The most recent ``limit`` distinct dedup keys, oldest forgotten first."""

    __slots__ = ("_keys", "_limit")

    def __init__(self, limit: int) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def add(self, key: str) -> bool:
        """Remember ``key``; ``False`` if it was already remembered."""
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self._limit:
            self._keys.popitem(last=False)
        return True


class QueueEventSubscription:
    """Subscribe to channels and iterate their queue events: history first, then live, each key at most once.

    Use as an async context manager; leaving it unsubscribes, whatever happened inside::

        async with QueueEventSubscription(channels_plugin, [QueueChannels.task(task_id)]) as subscription:
            async for message in subscription:
                ...
    """

    __slots__ = (
        "_backlog",
        "_channels",
        "_dropped",
        "_filler",
        "_history",
        "_last_event_id",
        "_plugin",
        "_ready",
        "_seen",
        "_service",
        "_subscriber",
    )

    def __init__(
        self,
        plugin: ChannelsPlugin,
        channels: Sequence[str],
        *,
        history: int = DEFAULT_HISTORY,
        last_event_id: str | None = None,
        dedup_window: int = DEFAULT_DEDUP_WINDOW,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        service: QueueService | None = None,
    ) -> None:
        """Describe the subscription (nothing is subscribed until the context is entered).

        Args:
            plugin: The app's ``ChannelsPlugin``.
            channels: Channel names, e.g. ``[QueueChannels.task(task_id)]``.
            history: Most recent events replayed per channel on entry; ``0`` replays nothing.
            last_event_id: Replay only what follows this event id (an SSE client's ``Last-Event-ID``). From a
                task's durable history that is every stored event after it, however many (``history`` does not
                cap a resume; the id is looked for among the task's ``RESUME_SEARCH`` most recent events). When
                the id is no longer in the history, the most recent ``history`` events are replayed.
            dedup_window: How many distinct event keys are remembered for deduplication.
            max_backlog: Most live events waiting for the client; when full, the oldest is dropped and a
                ``stream.gap`` event reports how many were (see the module docstring).
            service: The open ``QueueService`` whose durable event history replays task channels (when it stores
                one); ``None`` replays every channel from the Channels backend.

        Raises:
            ValueError: ``channels`` is empty, ``history`` is negative, or ``dedup_window`` or ``max_backlog`` is
                below 1.
        """
        if isinstance(channels, str) or not channels:
            raise ValueError("channels must be a non-empty list of channel names")
        if history < 0 or dedup_window < 1 or max_backlog < 1:
            raise ValueError("history must be >= 0, and dedup_window and max_backlog >= 1")
        self._plugin = plugin
        self._channels = list(dict.fromkeys(channels))
        self._history = history
        self._last_event_id = last_event_id
        self._seen = _SeenKeys(dedup_window)
        self._subscriber: Subscriber | None = None
        self._backlog: deque[bytes] = deque(maxlen=max_backlog)
        self._dropped = 0
        self._ready = asyncio.Event()
        self._filler: asyncio.Task[None] | None = None
        self._service = service

    async def __aenter__(self) -> QueueEventSubscription:
        self._subscriber = await self._plugin.subscribe(self._channels)
        self._filler = asyncio.get_running_loop().create_task(self._fill(self._subscriber))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Unsubscribe (idempotent); an iteration in progress ends."""
        subscriber, self._subscriber = self._subscriber, None
        filler, self._filler = self._filler, None
        if subscriber is not None:
            # Shielded: this runs when a client disconnects and the stream is being cancelled, and a backend
            # such as Redis must still get the unsubscribe, or the subscription would leak.
            with anyio.CancelScope(shield=True):
                await self._plugin.unsubscribe(subscriber, self._channels)
        if filler is not None:
            filler.cancel()
            with anyio.CancelScope(shield=True), contextlib.suppress(asyncio.CancelledError):
                await filler
        self._ready.set()

    async def _fill(self, subscriber: Subscriber) -> None:
        """Move live events from the subscriber's (maybe unbounded) queue into the bounded backlog, as they come."""
        try:
            async for data in subscriber.iter_events():
                if len(self._backlog) == self._backlog.maxlen:
                    self._dropped += 1  # the append below drops the oldest
                self._backlog.append(data)
                self._ready.set()
        finally:
            self._ready.set()

    async def __aiter__(self) -> AsyncGenerator[QueueEventMessage, None]:
        if self._subscriber is None:
            raise RuntimeError("enter the subscription (async with) before iterating it")
        for message in await self._replay():
            if self._seen.add(message.dedup_key):
                yield message
        while True:  # live events from the backlog, a stream.gap event first wherever some were dropped
            if self._dropped:
                dropped, self._dropped = self._dropped, 0
                logger.warning("a queue event subscriber fell behind: %d event(s) dropped", dropped)
                yield QueueEventMessage.gap(dropped)
            elif self._backlog:
                live = QueueEventMessage.parse(self._backlog.popleft())
                if live is not None and self._seen.add(live.dedup_key):
                    yield live
            elif self._filler is None or self._filler.done():
                return
            else:
                self._ready.clear()
                await self._ready.wait()

    async def _replay(self) -> list[QueueEventMessage]:
        """Read the history, drop what the client already has (up to ``last_event_id``) and mark it seen."""
        if self._history == 0:
            return []
        messages: list[QueueEventMessage] = []
        for channel in self._channels:
            messages += await self._channel_history(channel)
        if len(self._channels) > 1:
            messages.sort(key=lambda message: message.occurred_at)
        if self._last_event_id is not None:
            delivered = next(
                (index for index in range(len(messages) - 1, -1, -1) if messages[index].id == self._last_event_id),
                None,
            )
            if delivered is not None:
                for message in messages[: delivered + 1]:
                    self._seen.add(message.dedup_key)
                messages = messages[delivered + 1 :]
        return messages

    async def _channel_history(self, channel: str) -> list[QueueEventMessage]:
        """The most recent ``history`` events of ``channel``, oldest first."""
        service, task_id = self._service, _task_of(channel)
        if service is not None and task_id is not None and service.publisher.stores_history:
            if self._last_event_id is not None:
                missed = await _stored_after(service, task_id, self._last_event_id)
                if missed is not None:
                    return [QueueEventMessage.of(event) for event in missed]
            page = await service.list_events(task_id=task_id, limit=self._history, newest_first=True)
            return [QueueEventMessage.of(event) for event in reversed(page.events)]
        # A detached subscriber collects the history through the plugin's public API without mixing it into the
        # live stream.
        collector = Subscriber(self._plugin)
        try:
            await self._plugin.put_subscriber_history(collector, channel, limit=self._history)
        except NotImplementedError:  # the Channels backend keeps no history (e.g. Redis pub/sub)
            return []
        collector.put_nowait(None)
        return [message async for data in collector.iter_events() if (message := QueueEventMessage.parse(data))]


async def _stored_after(service: QueueService, task_id: str, event_id: str) -> list[QueueEvent] | None:
    """Every stored event of the task after the event ``event_id``, oldest first; ``None`` when that event is not
    among the task's ``RESUME_SEARCH`` most recent stored events (pruned, or of another task)."""
    newer: list[QueueEvent] = []
    cursor: str | None = None
    while len(newer) < RESUME_SEARCH:
        page = await service.list_events(task_id=task_id, limit=_RESUME_PAGE, cursor=cursor, newest_first=True)
        for event in page.events:
            if event.id == event_id:
                newer.reverse()
                return newer
            newer.append(event)
        if page.next_cursor is None:
            return None
        cursor = page.next_cursor
    return None


_TASK_CHANNEL_PREFIX = f"{CHANNEL_PREFIX}:task:"
_CHANNEL_SUFFIX = ":events"


def _task_of(channel: str) -> str | None:
    """The task id of a task channel (``QueueChannels.task(id)``), else ``None``."""
    if channel.startswith(_TASK_CHANNEL_PREFIX) and channel.endswith(_CHANNEL_SUFFIX):
        return channel[len(_TASK_CHANNEL_PREFIX) : -len(_CHANNEL_SUFFIX)] or None
    return None

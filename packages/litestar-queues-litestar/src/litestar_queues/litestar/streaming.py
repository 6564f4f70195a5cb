"""Stream queue events to browsers: over a websocket (``stream_queue_events``) or as Server-Sent Events
(``sse_queue_events``). Both replay bounded history (a task's durable event history when the queue service stores
one), deliver each event key at most once per connection, and ask the application's authorization hook first.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

import anyio
from litestar import Litestar, Request, WebSocket
from litestar.channels import ChannelsPlugin
from litestar.exceptions import ImproperlyConfiguredException, PermissionDeniedException, WebSocketDisconnect
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage
from litestar.status_codes import WS_1008_POLICY_VIOLATION

from litestar_queues.litestar.authorization import ChannelAuthorizer, is_subscription_allowed
from litestar_queues.litestar.plugin import QueuePlugin
from litestar_queues.litestar.subscription import (
    DEFAULT_DEDUP_WINDOW,
    DEFAULT_HISTORY,
    DEFAULT_MAX_BACKLOG,
    QueueEventSubscription,
)
from litestar_queues.service import QueueService

__all__ = ("find_channels_plugin", "sse_queue_events", "stream_queue_events")

logger = logging.getLogger("litestar_queues.litestar")


async def stream_queue_events(
    socket: WebSocket[Any, Any, Any],
    channels: Sequence[str],
    *,
    history: int = DEFAULT_HISTORY,
    authorize: ChannelAuthorizer | None = None,
    channels_plugin: ChannelsPlugin | None = None,
    dedup_window: int = DEFAULT_DEDUP_WINDOW,
    max_backlog: int = DEFAULT_MAX_BACKLOG,
) -> None:
    """Send the queue events of ``channels`` to a websocket as JSON text messages until the client disconnects.

    The socket is accepted if it is not yet. Recent events (up to ``history`` per channel) are sent first, then
    live ones, each ``eventKey`` (or ``id``) at most once. A task's channel replays the task's stored events when
    the app's ``QueuePlugin`` keeps a durable event history (``QueueEventConfig(history=True)``): a page opened
    after the job finished gets them all. Messages from the client are read and ignored. Returns when the client
    disconnects (or the server closes the connection); the subscription is always released.

    Args:
        socket: The websocket of the route handler.
        channels: Channel names, e.g. ``[QueueChannels.task(task_id)]``.
        history: Most recent events replayed per channel; ``0`` sends only new events. Without a durable event
            history, the Channels backend keeps history only if configured to (e.g.
            ``MemoryChannelsBackend(history=100)``; Redis pub/sub keeps none).
        authorize: ``authorize(socket, channels) -> bool`` (sync or async); defaults to the ``QueuePlugin``'s
            ``authorize_channels`` (and allows everything without one). A refusal closes the socket with code
            1008 (policy violation) before anything is sent.
        channels_plugin: The ``ChannelsPlugin`` to subscribe through; found on the app when ``None``.
        dedup_window: Distinct event keys remembered for deduplication.
        max_backlog: Most live events held for a client that reads slower than they arrive; beyond it the oldest
            are dropped and the client gets a ``stream.gap`` event saying how many (``payload.dropped``).

    Raises:
        ImproperlyConfiguredException: the app has no ``ChannelsPlugin`` to subscribe through.
    """
    channel_list = list(channels)
    app = socket.app
    if not await is_subscription_allowed(socket, channel_list, _authorizer(app, authorize)):
        await socket.close(code=WS_1008_POLICY_VIOLATION, reason="subscription not allowed")
        return
    plugin = channels_plugin or _find_channels_plugin(app)
    if socket.connection_state == "init":
        await socket.accept()
    subscription = QueueEventSubscription(
        plugin,
        channel_list,
        history=history,
        dedup_window=dedup_window,
        max_backlog=max_backlog,
        service=_service(app),
    )
    async with subscription, anyio.create_task_group() as task_group:
        # Reading the socket is how a disconnect is noticed while no event is being sent.
        task_group.start_soon(_cancel_on_disconnect, socket, task_group.cancel_scope)
        try:
            async with aclosing(aiter(subscription)) as messages:
                async for message in messages:
                    await socket.send_text(message.data)
        except WebSocketDisconnect:
            task_group.cancel_scope.cancel()  # the client left while an event was being sent


async def _cancel_on_disconnect(socket: WebSocket[Any, Any, Any], scope: anyio.CancelScope) -> None:
    while (await socket.receive())["type"] != "websocket.disconnect":
        continue
    scope.cancel()


async def sse_queue_events(
    request: Request[Any, Any, Any],
    channels: Sequence[str],
    *,
    history: int = DEFAULT_HISTORY,
    authorize: ChannelAuthorizer | None = None,
    channels_plugin: ChannelsPlugin | None = None,
    last_event_id: str | None = None,
    retry_ms: int | None = None,
    dedup_window: int = DEFAULT_DEDUP_WINDOW,
    max_backlog: int = DEFAULT_MAX_BACKLOG,
) -> ServerSentEvent:
    """Return a Server-Sent Events response streaming the queue events of ``channels``.

    Every message carries ``id: <event id>`` and the event JSON as ``data``. A browser's ``EventSource`` that
    reconnects sends ``Last-Event-ID``; the stream then resumes right after that event, without repeating or
    skipping any: from a task's durable event history when the app keeps one (every stored event after it,
    however many), else from the Channels history (the events still in it). The subscription starts when the
    response starts streaming and is released when the client disconnects.

    Args:
        request: The request of the route handler.
        channels: Channel names, e.g. ``[QueueChannels.task(task_id)]``.
        history: Most recent events replayed per channel on a fresh connection (and the resume window of the
            Channels history).
        authorize: ``authorize(request, channels) -> bool`` (sync or async); defaults to the ``QueuePlugin``'s
            ``authorize_channels`` (and allows everything without one).
        channels_plugin: The ``ChannelsPlugin`` to subscribe through; found on the app when ``None``.
        last_event_id: Resume after this event id; defaults to the ``Last-Event-ID`` request header.
        retry_ms: Reconnection delay to ask of the browser (the SSE ``retry`` field).
        dedup_window: Distinct event keys remembered for deduplication.
        max_backlog: Most live events held for a client that reads slower than they arrive; beyond it the oldest
            are dropped and the client gets a ``stream.gap`` event saying how many (``payload.dropped``).

    Raises:
        PermissionDeniedException: the authorization hook refused (a 403 response).
        ImproperlyConfiguredException: the app has no ``ChannelsPlugin`` to subscribe through.
    """
    channel_list = list(channels)
    app = request.app
    if not await is_subscription_allowed(request, channel_list, _authorizer(app, authorize)):
        raise PermissionDeniedException("subscription not allowed")
    subscription = QueueEventSubscription(
        channels_plugin or _find_channels_plugin(app),
        channel_list,
        history=history,
        last_event_id=last_event_id if last_event_id is not None else request.headers.get("last-event-id"),
        dedup_window=dedup_window,
        max_backlog=max_backlog,
        service=_service(app),
    )
    return ServerSentEvent(_sse_messages(subscription), retry_duration=retry_ms)


async def _sse_messages(subscription: QueueEventSubscription) -> AsyncIterator[ServerSentEventMessage]:
    async with subscription, aclosing(aiter(subscription)) as messages:
        async for message in messages:
            yield ServerSentEventMessage(data=message.data.decode(), id=message.id)


def _queue_plugin(app: Litestar) -> QueuePlugin | None:
    try:
        return app.plugins.get(QueuePlugin)
    except KeyError:
        return None


def _service(app: Litestar) -> QueueService | None:
    """The app's open queue service, whose durable event history replays task channels."""
    queue_plugin = _queue_plugin(app)
    if queue_plugin is None:
        return None
    service = app.state.get(queue_plugin.config.queue_service_state_key)
    return service if isinstance(service, QueueService) else None


def _authorizer(app: Litestar, authorize: ChannelAuthorizer | None) -> ChannelAuthorizer | None:
    if authorize is not None:
        return authorize
    queue_plugin = _queue_plugin(app)
    return queue_plugin.authorize_channels if queue_plugin is not None else None


def find_channels_plugin(app: Litestar) -> ChannelsPlugin | None:
    """The ``ChannelsPlugin`` queue events of ``app`` stream through: the ``QueuePlugin``'s own, else the app's."""
    queue_plugin = _queue_plugin(app)
    if queue_plugin is not None and queue_plugin.channels is not None:
        return queue_plugin.channels
    try:
        return app.plugins.get(ChannelsPlugin)
    except KeyError:
        return None


def _find_channels_plugin(app: Litestar) -> ChannelsPlugin:
    plugin = find_channels_plugin(app)
    if plugin is None:
        raise ImproperlyConfiguredException(
            "streaming queue events needs Litestar Channels: add ChannelsPlugin(backend, "
            "arbitrary_channels_allowed=True) to the app and pass it as QueueEventConfig(channels_backend=...)"
        )
    return plugin

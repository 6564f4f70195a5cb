"""Litestar integration of litestar-queues: ``QueuePlugin``, the ``QueueService`` dependency, the ``litestar queues``
CLI, and websocket / Server-Sent Events streaming of queue events through Litestar Channels.

``NamedDependency`` is Litestar's own marker (``litestar.di.NamedDependency``), re-exported so handlers can write
``queue_service: NamedDependency[QueueService]`` with one import.
"""

from litestar.di import NamedDependency

from litestar_queues.litestar.authorization import ChannelAuthorizer
from litestar_queues.litestar.channels import ChannelsQueueEventSink
from litestar_queues.litestar.dashboard import DashboardConfig
from litestar_queues.litestar.plugin import QueuePlugin, get_queue_plugin
from litestar_queues.litestar.runtime import QueueRuntime
from litestar_queues.litestar.streaming import sse_queue_events, stream_queue_events
from litestar_queues.litestar.subscription import QueueEventMessage, QueueEventSubscription

__all__ = (
    "ChannelAuthorizer",
    "ChannelsQueueEventSink",
    "DashboardConfig",
    "NamedDependency",
    "QueueEventMessage",
    "QueueEventSubscription",
    "QueuePlugin",
    "QueueRuntime",
    "get_queue_plugin",
    "sse_queue_events",
    "stream_queue_events",
)

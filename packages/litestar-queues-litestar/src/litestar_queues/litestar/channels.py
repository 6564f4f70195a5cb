"""Publishing queue events to Litestar Channels, and finding the ``ChannelsPlugin`` an app streams from."""

from __future__ import annotations

from collections.abc import Sequence

from litestar.channels import ChannelsBackend, ChannelsPlugin

from litestar_queues.errors import ConfigurationError
from litestar_queues.events import QueueEvent

__all__ = ("ChannelsQueueEventSink", "channels_plugin_for")


class ChannelsQueueEventSink:
    """A queue event sink that publishes each event's wire JSON to Litestar Channels.

    ``QueueEventConfig(channels_backend=...)`` builds one of these for you; construct it yourself only to pass
    it as ``QueueEventConfig(sink=...)`` or to a ``QueueEventPublisher``.

    Publishing awaits the backend (``ChannelsPlugin.wait_published``), so events of one task reach the
    channel in the order they were published, and a failure reaches the publisher (which logs it, or fails
    the task when ``strict=True``).
    """

    __slots__ = ("_target",)

    def __init__(self, channels: ChannelsPlugin | ChannelsBackend) -> None:
        """Create the sink.

        Args:
            channels: The application's ``ChannelsPlugin``, or a ``ChannelsBackend`` started by whoever owns it.

        Raises:
            ConfigurationError: ``channels`` is neither a ``ChannelsPlugin`` nor a ``ChannelsBackend``.
        """
        if not isinstance(channels, (ChannelsPlugin, ChannelsBackend)):
            raise ConfigurationError(
                "QueueEventConfig.channels_backend must be a litestar.channels.ChannelsPlugin or ChannelsBackend, "
                f"got {type(channels).__name__}"
            )
        self._target = channels

    async def publish(self, event: QueueEvent, channels: Sequence[str]) -> None:
        """Publish ``event`` as JSON bytes to every channel in ``channels``.

        Args:
            event: The event to publish.
            channels: Channel names, e.g. ``QueueChannels.task(task_id)``.
        """
        data = event.to_json()
        if isinstance(self._target, ChannelsPlugin):
            await self._target.wait_published(data, list(channels))
        else:
            await self._target.publish(data, list(channels))


def channels_plugin_for(channels: ChannelsPlugin | ChannelsBackend) -> ChannelsPlugin:
    """Return ``channels`` if it is a plugin, else a plugin serving any channel name on that backend.

    Args:
        channels: What ``QueueEventConfig.channels_backend`` holds.

    Raises:
        ConfigurationError: ``channels`` is neither a ``ChannelsPlugin`` nor a ``ChannelsBackend``.
    """
    if isinstance(channels, ChannelsPlugin):
        return channels
    if isinstance(channels, ChannelsBackend):
        return ChannelsPlugin(channels, arbitrary_channels_allowed=True)
    raise ConfigurationError(
        "QueueEventConfig.channels_backend must be a litestar.channels.ChannelsPlugin or ChannelsBackend, "
        f"got {type(channels).__name__}"
    )

"""Who may subscribe to which event channels: the application decides through one hook."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection

__all__ = ("ChannelAuthorizer", "is_subscription_allowed")

ChannelAuthorizer = Callable[[ASGIConnection[Any, Any, Any, Any], list[str]], bool | Awaitable[bool]]
"""``authorize(connection, channels) -> bool`` (sync or async): may this connection subscribe to all of ``channels``?

The connection carries ``user``, ``auth``, path and query parameters and headers, so a hook can check that a
task belongs to the caller's tenant before any event is sent.
"""


async def is_subscription_allowed(
    connection: ASGIConnection[Any, Any, Any, Any], channels: list[str], authorize: ChannelAuthorizer | None
) -> bool:
    """Ask ``authorize`` (when given) whether ``connection`` may subscribe to ``channels``.

    Args:
        connection: The websocket or HTTP request asking to subscribe.
        channels: The channel names it asks for.
        authorize: The hook; ``None`` allows everything.

    Returns:
        Whether the subscription may go ahead.
    """
    if authorize is None:
        return True
    verdict = authorize(connection, list(channels))
    if inspect.isawaitable(verdict):
        verdict = await verdict
    return verdict is True

"""Deadlines that no awaited call can stretch.

``asyncio.wait_for`` cancels a call that runs late and then waits for it to end: a call stuck on a dead connection,
or one whose client swallows the cancellation (a cancel racing its reply), holds the caller past any deadline.
:func:`within` cancels it and leaves it behind instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

__all__ = ("AbandonedCallError", "cancel_and_leave", "within")

logger = logging.getLogger("litestar_queues")

_T = TypeVar("_T")


class AbandonedCallError(TimeoutError):
    """A call did not return in time; it was cancelled and left behind."""


async def within(awaitable: Awaitable[_T], seconds: float, what: str) -> _T:
    """Await ``awaitable`` for at most ``seconds`` and return its result.

    Raises:
        AbandonedCallError: it did not finish in time (``what`` names it in the message and the log).
    """
    task = asyncio.ensure_future(awaitable)
    await asyncio.wait((task,), timeout=max(seconds, 0.0))
    if task.done():
        return task.result()
    cancel_and_leave((task,))
    logger.warning("%s did not return within %.2fs; abandoned it", what, seconds)
    raise AbandonedCallError(f"{what} did not return within {seconds:.2f}s")


def cancel_and_leave(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` without waiting for them; their outcomes are retrieved whenever they end."""
    for task in tasks:
        task.cancel()
        task.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned call's outcome, so that asyncio does not report it as never retrieved."""
    if not task.cancelled():
        task.exception()

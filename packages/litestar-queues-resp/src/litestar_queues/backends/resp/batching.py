"""Group commit for scripts that many coroutines call at once (finishing attempts, single enqueues).

A call made while no call of the same kind is in flight goes out at once, so a lone caller pays nothing.
Calls made while one is in flight wait and go out together in one script call when it returns: under load
the round trips per job fall with the number of concurrent callers instead of staying at one per call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ("GroupCommit",)


class GroupCommit:
    """Sends items through ``send`` (a list in, a list of per-item replies out), batching concurrent callers."""

    __slots__ = ("_busy", "_max_batch", "_queue", "_send", "_tasks")

    def __init__(self, send: Callable[[list[Any]], Awaitable[list[Any]]], *, max_batch: int) -> None:
        """Create the batcher.

        Args:
            send: Sends a batch (one atomic script call per item list) and returns one reply per item.
            max_batch: Most items per call.
        """
        self._send = send
        self._max_batch = max_batch
        self._busy = False
        self._queue: list[tuple[Any, asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: Any) -> Any:
        """Send ``item`` (now, or with the next batch if a call is in flight) and return its reply.

        Raises:
            Exception: whatever ``send`` raised for the batch the item went out in.
        """
        if self._busy:
            waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._queue.append((item, waiter))
            return await waiter
        self._busy = True
        try:
            (reply,) = await self._send([item])
        finally:
            self._busy = False
            self._flush_queued()
        return reply

    def _flush_queued(self) -> None:
        if self._queue and not self._busy:
            self._busy = True
            task = asyncio.get_running_loop().create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    replies = await self._send([item for item, _ in batch])
                except Exception as exc:  # every caller of the batch gets the batch's error
                    for _, waiter in batch:
                        if not waiter.done():
                            waiter.set_exception(exc)
                else:
                    for (_, waiter), reply in zip(batch, replies, strict=True):
                        if not waiter.done():
                            waiter.set_result(reply)
        finally:
            self._busy = False
            for _, waiter in self._queue:  # only when cancelled (loop shutdown): release the rest
                waiter.cancel()
            self._queue.clear()

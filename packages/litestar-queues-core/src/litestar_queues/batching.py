"""Group commit for the writes running tasks make (events into the history, progress onto records).

Each submitter gets a future that resolves once its item is written. One flusher writes whatever has
accumulated as one batch, and while that write is in flight the next submitters accumulate for the following
one: a lone submitter waits for no timer (its write goes out on the next turn of the event loop), and under load
the round trips fall with the number of concurrent submitters instead of staying at one per item. Items are
written in the order they were submitted, one batch at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeAlias, TypeVar

__all__ = ("Failures", "WriteBatcher")

_Item = TypeVar("_Item")

Failures: TypeAlias = Sequence[BaseException | None] | None
"""What a write may return: ``None`` when every item is written, else one failure (or ``None``) per item."""


class WriteBatcher(Generic[_Item]):
    """Writes submitted items with ``write(batch)``, in batches of at most ``max_batch``, in submission order."""

    __slots__ = ("_flusher", "_max_batch", "_pending", "_write")

    def __init__(self, write: Callable[[list[_Item]], Awaitable[Failures]], *, max_batch: int = 500) -> None:
        """Create the batcher.

        Args:
            write: Writes one batch. Raising fails every item of it; returning a sequence fails the items whose
                entry is an exception (one entry per item).
            max_batch: Most items per batch.
        """
        self._write = write
        self._max_batch = max_batch
        self._pending: list[tuple[_Item, asyncio.Future[None] | None]] = []
        self._flusher: asyncio.Task[None] | None = None

    @property
    def backlog(self) -> int:
        """How many submitted items wait for a write to start (the batch in flight is not counted)."""
        return len(self._pending)

    def submit(self, item: _Item) -> asyncio.Future[None]:
        """Add ``item`` to the next batch; the future resolves when it is written, or raises what failed it.

        The item is written even if nobody awaits the future (a cancelled submitter does not take it back), and a
        failure nobody awaits is not reported as unretrieved.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((item, future))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        return future

    def add(self, item: _Item) -> None:
        """Add ``item`` to the next batch with nothing to wait on (``write`` alone sees and reports its failure):
        :meth:`submit` without the future, for the items nobody waits for."""
        self._pending.append((item, None))
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def flush(self) -> None:
        """Wait until every item submitted so far is written (or failed)."""
        while self._flusher is not None:
            await asyncio.wait({self._flusher})

    async def _flush(self) -> None:
        batch: list[tuple[_Item, asyncio.Future[None] | None]] = []
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                try:
                    failures = await self._write([item for item, _ in batch])
                except Exception as error:  # every submitter of the batch sees the failure
                    failures = [error] * len(batch)
                for (_, future), failure in zip(batch, failures or (None,) * len(batch), strict=True):
                    if future is None or future.done():
                        continue
                    if failure is None:
                        future.set_result(None)
                    else:
                        future.set_exception(failure)
                        future.exception()  # retrieved: a submitter that left must not log it as unhandled
                batch = []
        finally:
            self._flusher = None
            for _, future in batch + self._pending:  # left unwritten only when the flusher was cancelled
                if future is not None:
                    future.cancel()
            self._pending = []

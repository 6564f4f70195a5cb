"""Coalesce concurrent calls into one statement: group commit for the operations a busy worker repeats.

A worker with fifty slots finishes up to fifty attempts at once, and on a database one round trip
each is the bottleneck (the statement is cheap; sending it is not). Callers submit their item and
await a future; one flusher sends whatever has accumulated as one statement, and while that
statement is in flight the next callers accumulate for the following one. A lone caller waits for
no timer: its statement goes out on the next turn of the event loop.

Items with the same key never share a batch (the second waits for the next one), so a statement
joins each target row with at most one item and every caller learns exactly its own outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

__all__ = ("Coalescer",)

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


class Coalescer(Generic[_Item, _Result]):
    """Runs ``run(items)`` for batches of submitted items; each submitter gets its item's result."""

    __slots__ = ("_flusher", "_key", "_max_batch", "_pending", "_run")

    def __init__(
        self,
        run: Callable[[Sequence[_Item]], Awaitable[Sequence[_Result]]],
        *,
        key: Callable[[_Item], Hashable],
        max_batch: int = 500,
    ) -> None:
        """Coalesce calls of ``run``, which returns one result per item, in order.

        Args:
            run: Executes one batch.
            key: Items with equal keys go to different batches.
            max_batch: Most items per batch.
        """
        self._run = run
        self._key = key
        self._max_batch = max_batch
        self._pending: list[tuple[_Item, asyncio.Future[_Result]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: _Item) -> _Result:
        """Add ``item`` to the next batch and return its result."""
        future: asyncio.Future[_Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await future

    def _take(self) -> list[tuple[_Item, asyncio.Future[_Result]]]:
        batch: list[tuple[_Item, asyncio.Future[_Result]]] = []
        later: list[tuple[_Item, asyncio.Future[_Result]]] = []
        keys: set[Hashable] = set()
        for entry in self._pending:
            key = self._key(entry[0])
            if len(batch) >= self._max_batch or key in keys:
                later.append(entry)
            else:
                keys.add(key)
                batch.append(entry)
        self._pending = later
        return batch

    async def _flush(self) -> None:
        batch: list[tuple[_Item, asyncio.Future[_Result]]] = []
        try:
            while self._pending:
                batch = self._take()
                try:
                    results = await self._run([item for item, _ in batch])
                except Exception as error:  # every caller of the batch sees the failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._flusher = None
            for _, future in [*batch, *self._pending]:  # only left unresolved if the flusher was cancelled
                if not future.done():
                    future.cancel()
            if any(future.cancelled() for _, future in self._pending):
                self._pending = [entry for entry in self._pending if not entry[1].cancelled()]

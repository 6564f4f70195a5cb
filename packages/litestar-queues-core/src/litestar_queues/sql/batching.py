"""Coalesce concurrent calls into one statement: group commit for the operations a busy worker repeats.

A worker with fifty slots finishes up to fifty attempts at once, and on a database one round trip
each is the bottleneck (the statement is cheap; sending it is not). Callers submit their item and
await a future; a flusher sends whatever has accumulated as one statement, and while that statement
is in flight the next callers accumulate for the following one. A lone caller waits for no timer: its
statement goes out on the next turn of the event loop. With ``max_in_flight`` above one, a caller
arriving while fewer than that many statements are in flight starts another flusher, so a statement's
round trip does not hold back the callers behind it.

Items with the same key never share a batch nor run in two batches at once (the second waits for a
later one), so a statement joins each target row with at most one item, every caller learns exactly
its own outcome, and two statements never wait on each other's rows.
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

    __slots__ = ("_flushers", "_in_flight", "_key", "_max_batch", "_max_in_flight", "_pending", "_ready", "_run")

    def __init__(
        self,
        run: Callable[[Sequence[_Item]], Awaitable[Sequence[_Result]]],
        *,
        key: Callable[[_Item], Hashable],
        max_batch: int = 500,
        max_in_flight: int = 1,
    ) -> None:
        """Coalesce calls of ``run``, which returns one result per item, in order.

        Args:
            run: Executes one batch.
            key: Items with equal keys go to different batches.
            max_batch: Most items per batch.
            max_in_flight: Most batches running at once.
        """
        self._run = run
        self._key = key
        self._max_batch = max_batch
        self._pending: list[tuple[_Item, asyncio.Future[_Result]]] = []
        self._max_in_flight = max_in_flight
        self._flushers: set[asyncio.Task[None]] = set()
        self._ready = False
        """A flusher is about to take the pending items (no other is needed for them)."""
        self._in_flight: set[Hashable] = set()
        """Keys of the items in running batches."""

    def submit(self, item: _Item) -> asyncio.Future[_Result]:
        """Add ``item`` to the next batch; the future resolves to its result.

        A future rather than a coroutine: a waiting submitter holds no frame of its own.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Result] = loop.create_future()
        self._pending.append((item, future))
        if not self._ready and len(self._flushers) < self._max_in_flight:
            self._ready = True
            self._flushers.add(loop.create_task(self._flush()))
        return future

    def _take(self) -> list[tuple[_Item, asyncio.Future[_Result]]]:
        batch: list[tuple[_Item, asyncio.Future[_Result]]] = []
        later: list[tuple[_Item, asyncio.Future[_Result]]] = []
        keys = self._in_flight
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
                self._ready = False
                if not batch:  # every pending item waits for a key in another flusher's batch, which takes it next
                    break
                try:
                    results = await self._run([item for item, _ in batch])
                except Exception as error:  # every caller of the batch sees the failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                else:
                    for (_, future), result in zip(batch, results, strict=True):
                        if not future.done():
                            future.set_result(result)
                self._in_flight.difference_update(self._key(item) for item, _ in batch)
                batch = []
        finally:
            self._flushers.discard(asyncio.current_task())
            self._ready = False
            self._in_flight.difference_update(self._key(item) for item, _ in batch)
            for _, future in batch:  # only left unresolved if the flusher was cancelled
                if not future.done():
                    future.cancel()
            if self._pending and not self._flushers:  # no other flusher will take them
                for _, future in self._pending:
                    future.cancel()
                self._pending = []

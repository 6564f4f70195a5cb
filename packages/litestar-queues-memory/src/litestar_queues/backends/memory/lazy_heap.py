"""A binary heap whose entries go stale instead of being removed."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ("LazyHeap",)

EntryT = TypeVar("EntryT", bound=tuple[Any, ...])

_SLACK = 1024
"""Stale entries tolerated on top of twice the live ones before a compaction."""


class LazyHeap(Generic[EntryT]):
    """A ``heapq`` list whose readers skip stale entries; ``push`` compacts when stale entries pile up.

    Removing an entry from the middle of a heap costs O(n), so the records' state is the truth and an
    entry is merely a hint: readers check ``is_live`` and drop what no longer matches. Compaction keeps
    the list within twice its live size plus a constant, which makes it amortised O(1) per push.
    """

    __slots__ = ("_compact_above", "_is_live", "items")

    def __init__(self, is_live: Callable[[EntryT], bool]) -> None:
        """Create an empty heap.

        Args:
            is_live: Whether an entry still describes the stored state.
        """
        self.items: list[EntryT] = []
        """The heap itself, for ``heapq`` functions (kept as the same list object for its whole life)."""
        self._is_live = is_live
        self._compact_above = _SLACK

    def push(self, entry: EntryT) -> None:
        """Add ``entry``, dropping every stale entry first when too many have accumulated."""
        items = self.items
        heapq.heappush(items, entry)
        if len(items) > self._compact_above:
            items[:] = [item for item in items if self._is_live(item)]
            heapq.heapify(items)
            self._compact_above = 2 * len(items) + _SLACK

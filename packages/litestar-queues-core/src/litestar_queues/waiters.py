"""Tasks waiting for a named event (work on a queue, a record finishing): the push wakeups of a backend.

A backend registers a waiter before it checks the state it waits on (so a wake-up between the check and
the wait is not lost), then waits; whatever makes the event happen, or a notification of it, wakes the name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

__all__ = ("Waiters",)


class Waiters:
    """Futures registered under names; waking a name resolves every future registered under it."""

    __slots__ = ("_by_name",)

    def __init__(self) -> None:
        """Create an empty registry."""
        self._by_name: dict[str, set[asyncio.Future[None]]] = {}

    def register(self, names: Iterable[str]) -> asyncio.Future[None]:
        """Return a future resolved when any of ``names`` is woken (register before checking state)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for name in names:
            self._by_name.setdefault(name, set()).add(future)
        return future

    def release(self, future: asyncio.Future[None], names: Iterable[str]) -> None:
        """Forget a future registered under ``names``."""
        for name in names:
            futures = self._by_name.get(name)
            if futures is not None:
                futures.discard(future)
                if not futures:
                    del self._by_name[name]

    async def wait(self, future: asyncio.Future[None], names: Iterable[str], timeout: float) -> None:
        """Wait until ``future`` resolves or ``timeout`` seconds pass (always yielding once), then release it."""
        try:
            if timeout > 0 and not future.done():
                await asyncio.wait({future}, timeout=timeout)
            else:
                await asyncio.sleep(0)
        finally:
            self.release(future, names)
            if not future.done():
                future.cancel()

    def wake(self, name: str) -> None:
        """Resolve every future registered under ``name``."""
        for future in self._by_name.pop(name, ()):
            if not future.done():
                future.set_result(None)

    def wake_all(self) -> None:
        """Resolve every registered future (after a lost listener reconnects, or on close)."""
        by_name, self._by_name = self._by_name, {}
        for futures in by_name.values():
            for future in futures:
                if not future.done():
                    future.set_result(None)

    def __bool__(self) -> bool:
        """Whether anyone waits."""
        return bool(self._by_name)

"""Futures parked until something happens to a named subject (a queue, a record)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

__all__ = ("Waiters",)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Waiters:
    """Wakes the coroutines waiting on a subject. Bound to the running event loop of each waiter."""

    __slots__ = ("_by_subject",)

    def __init__(self) -> None:
        """Create a registry with nobody waiting."""
        self._by_subject: dict[str, set[asyncio.Future[None]]] = {}

    def __bool__(self) -> bool:
        """Whether anybody is waiting (lets hot paths skip the wake-up call)."""
        return bool(self._by_subject)

    async def wait(self, subjects: Iterable[str], *, timeout: float) -> None:
        """Return when one of ``subjects`` is woken, or after ``timeout`` seconds (always yields once).

        Args:
            subjects: What to wait for; waking any of them ends the wait.
            timeout: Seconds to wait at most; zero or less still yields to the event loop once.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        subjects = tuple(subjects)
        for subject in subjects:
            self._by_subject.setdefault(subject, set()).add(future)
        timer = loop.call_later(max(timeout, 0.0), _resolve, future)
        try:
            await future
        finally:
            timer.cancel()
            for subject in subjects:
                group = self._by_subject.get(subject)
                if group is not None:
                    group.discard(future)
                    if not group:
                        del self._by_subject[subject]

    def wake(self, subject: str) -> None:
        """End the wait of everybody waiting on ``subject``."""
        group = self._by_subject.pop(subject, None)
        if group:
            for future in group:
                _resolve(future)

    def wake_all(self) -> None:
        """End every wait."""
        groups, self._by_subject = self._by_subject, {}
        for group in groups.values():
            for future in group:
                _resolve(future)

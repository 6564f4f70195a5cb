"""Running a statement or transaction again when the database chose it as a deadlock victim.

A deadlock victim was rolled back as a whole, so nothing of it applied and running it again is safe. Each SQL
backend says which of its library's errors is a deadlock (SQLSpec's ``DeadlockError``, a SQLSTATE or MySQL error
code under SQLAlchemy).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ("DEADLOCK_TRIES", "retrying")

_T = TypeVar("_T")

DEADLOCK_TRIES = 8
"""Tries of a statement or transaction chosen as a deadlock victim before the error propagates."""


async def retrying(
    operation: Callable[[], Awaitable[_T]], is_deadlock: Callable[[Exception], bool], *, tries: int = DEADLOCK_TRIES
) -> _T:
    """Await ``operation()`` (a new call each try), again while it raises an error ``is_deadlock`` accepts, at most
    ``tries`` times; the last try's error propagates."""
    for _ in range(tries - 1):
        try:
            return await operation()
        except Exception as error:
            if not is_deadlock(error):
                raise
    return await operation()

"""What the SQL backends do about a failed statement: run a deadlock victim again, tell a lost connection.

A deadlock victim was rolled back as a whole, so nothing of it applied and running it again is safe; each backend
says which of its library's errors is a deadlock (SQLSpec's ``DeadlockError``, a SQLSTATE or MySQL error code under
SQLAlchemy). A connection that failed (rather than a statement) is not given back for reuse: after a server restart
every pooled connection is dead, and each would otherwise fail one more operation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ("DEADLOCK_TRIES", "connection_lost", "retrying")

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


def connection_lost(sqlstate: object) -> bool:
    """Whether a driver error with this SQLSTATE (``None`` when it has none) says the connection failed rather than
    the statement: no SQLSTATE at all (a socket or client-side error, a connection left broken), or one of the
    connection exception (``08``) and operator intervention (``57P``: shutdown, restart) classes."""
    state = str(sqlstate or "")
    return not state or state.startswith(("08", "57P"))

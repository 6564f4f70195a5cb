"""The one source of time, injectable so tests of leases, schedules and timeouts need no real sleeping."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Protocol

__all__ = ("Clock", "SystemClock", "utc_now")


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


class Clock(Protocol):
    """Anything that tells the current aware UTC time."""

    def now(self) -> datetime:
        """Return the current time (aware, UTC)."""
        ...


class SystemClock:
    """The wall clock."""

    __slots__ = ()

    def now(self) -> datetime:
        """Return the current time (aware, UTC)."""
        return utc_now()

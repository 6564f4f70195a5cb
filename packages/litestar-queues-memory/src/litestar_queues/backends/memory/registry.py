"""Live workers and maintenance locks: small tables with an expiry per entry."""

from __future__ import annotations

from datetime import datetime, timedelta

from litestar_queues.backends.memory.snapshots import copy_worker
from litestar_queues.records import WorkerInfo

__all__ = ("LockTable", "WorkerTable")


class WorkerTable:
    """Registered workers; an entry is live while ``last_heartbeat_at + ttl > now``."""

    __slots__ = ("_workers",)

    def __init__(self) -> None:
        """Create an empty table."""
        self._workers: dict[str, tuple[WorkerInfo, datetime]] = {}

    def register(self, info: WorkerInfo, ttl_seconds: float) -> None:
        """Insert or replace ``info``, live for ``ttl_seconds`` after its last heartbeat."""
        self._workers[info.id] = (copy_worker(info), info.last_heartbeat_at + timedelta(seconds=ttl_seconds))

    def remove(self, worker_id: str) -> None:
        """Forget ``worker_id`` (no error if unknown)."""
        self._workers.pop(worker_id, None)

    def live(self, now: datetime) -> list[WorkerInfo]:
        """Return copies of the workers live at ``now``, ordered by id."""
        return [copy_worker(info) for _, (info, gone_at) in sorted(self._workers.items()) if gone_at > now]


class LockTable:
    """Named locks with an owner and an expiry; an expired lock is free."""

    __slots__ = ("_locks",)

    def __init__(self) -> None:
        """Create an empty table."""
        self._locks: dict[str, tuple[str, datetime]] = {}

    def acquire(self, name: str, owner: str, ttl_seconds: float, now: datetime) -> bool:
        """Take or renew ``name`` for ``owner``; ``False`` if another owner holds it unexpired at ``now``."""
        held = self._locks.get(name)
        if held is not None and held[0] != owner and held[1] > now:
            return False
        self._locks[name] = (owner, now + timedelta(seconds=ttl_seconds))
        return True

    def release(self, name: str, owner: str) -> None:
        """Release ``name`` if ``owner`` holds it."""
        held = self._locks.get(name)
        if held is not None and held[0] == owner:
            del self._locks[name]

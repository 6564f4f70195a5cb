"""Index finished records by queue and status, so bounded counts and listings of them read an index range.

``statistics(count_limit=n)`` (the dashboard's overview) counts at most ``n + 1`` records of each status
and queue: pending ones in the claim index, running ones in the lease index, and the finished ones here. A
finished record enters it once, when it ends (never when it is enqueued or claimed), and a listing of one
queue's failed records reads it in id order. MySQL/MariaDB need nothing: their claim index begins with
``(queue, status)`` for every status.

Applied migrations are never edited: a schema change is a new numbered file next to this one.
"""

from __future__ import annotations

from typing import Any

from litestar_queues.backends.sqlspec.migration_context import migration_names

__all__ = ("down", "up")


async def up(context: Any = None) -> list[str]:
    """Return the statement creating the index (none on MySQL/MariaDB)."""
    names = migration_names(context)
    if names.family == "mysql":
        return []
    return [
        f"CREATE INDEX {names.index('tasks_ended_ix')} ON {names.tasks} (queue, status, id) "
        "WHERE status IN ('completed', 'failed', 'cancelled', 'expired')"
    ]


async def down(context: Any = None) -> list[str]:
    """Return the statement dropping the index (none on MySQL/MariaDB)."""
    names = migration_names(context)
    return [] if names.family == "mysql" else [f"DROP INDEX {names.index('tasks_ended_ix')}"]

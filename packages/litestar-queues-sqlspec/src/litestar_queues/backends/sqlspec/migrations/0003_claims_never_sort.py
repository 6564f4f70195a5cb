"""Replace the ``(status, queue)`` index by one over failed, cancelled and expired records only.

On PostgreSQL and SQLite the full ``(status, queue)`` index let the planner serve a claim with it
while the table's statistics were stale (a burst of enqueues not yet analyzed): every claim then
read and sorted the whole backlog instead of the first rows of the claim index. The partial index
keeps listing the rare statuses fast, can never serve a claim, and is not written when work is
claimed or completes. MySQL/MariaDB keep their index: their claim index orders by status first.

Applied migrations are never edited: a schema change is a new numbered file next to this one.
"""

from __future__ import annotations

from typing import Any

from litestar_queues.backends.sqlspec.migration_context import migration_names

__all__ = ("down", "up")


async def up(context: Any = None) -> list[str]:
    """Return the statements swapping the indexes (none on MySQL/MariaDB)."""
    names = migration_names(context)
    if names.family == "mysql":
        return []
    return [
        f"DROP INDEX {names.index('tasks_status_ix')}",
        f"CREATE INDEX {names.index('tasks_failed_ix')} ON {names.tasks} (status, queue) "
        "WHERE status IN ('failed', 'cancelled', 'expired')",
    ]


async def down(context: Any = None) -> list[str]:
    """Return the statements restoring the ``(status, queue)`` index."""
    names = migration_names(context)
    if names.family == "mysql":
        return []
    return [
        f"DROP INDEX {names.index('tasks_failed_ix')}",
        f"CREATE INDEX {names.index('tasks_status_ix')} ON {names.tasks} (status, queue)",
    ]

"""Drop the event history's queue and type indexes: each stored event then updates three B-trees, not five.

Every event the history stores was inserted into five indexes (primary key, order, task, queue, type); the queue
and type indexes served only queries by queue or type without a task, which now read a bounded window of the
order index (:mod:`litestar_queues.sql.events`) instead. Per stored event on PostgreSQL that saves two index
inserts and their WAL records (``benchmarks/history_indexes.py``). The primary key, the order index (history
order, retention) and the task index (a job's events) stay.

Applied migrations are never edited: a schema change is a new numbered file next to this one.
"""

from __future__ import annotations

from typing import Any

from litestar_queues.backends.sqlspec.migration_context import migration_names
from litestar_queues.backends.sqlspec.names import TableNames

__all__ = ("down", "up")

_DROPPED = ("queue", "event_type")


def _index(names: TableNames, column: str) -> str:
    return names.index(f"events_{column}_ix")


async def up(context: Any = None) -> list[str]:
    """Return the statements dropping the queue and type indexes of the events table."""
    names = migration_names(context)
    if names.family == "mysql":
        return [f"ALTER TABLE {names.events} " + ", ".join(f"DROP INDEX {_index(names, c)}" for c in _DROPPED)]
    return [f"DROP INDEX {_index(names, column)}" for column in _DROPPED]


async def down(context: Any = None) -> list[str]:
    """Return the statements creating the two indexes again (as version 0006 made them)."""
    names = migration_names(context)
    events = names.events
    if names.family == "mysql":
        keys = ", ".join(f"ADD KEY {_index(names, c)} ({c}, occurred_at, seq, id)" for c in _DROPPED)
        return [f"ALTER TABLE {events} {keys}"]
    return [
        f"CREATE INDEX {_index(names, 'queue')} ON {events} (queue, occurred_at, seq, id) WHERE queue IS NOT NULL",
        f"CREATE INDEX {_index(names, 'event_type')} ON {events} (event_type, occurred_at, seq, id)",
    ]

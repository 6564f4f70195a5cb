"""Create the table of paused queues: one row per paused queue, kept until it is resumed.

Claims skip the queues listed here; nothing else reads it on a hot path.

Applied migrations are never edited: a schema change is a new numbered file next to this one.
"""

from __future__ import annotations

from typing import Any

from litestar_queues.backends.sqlspec.migration_context import migration_names

__all__ = ("down", "up")


async def up(context: Any = None) -> list[str]:
    """Return the statement creating the table."""
    names = migration_names(context)
    pauses = names.pauses
    statements = {
        "postgres": f'CREATE TABLE {pauses} (queue varchar(255) COLLATE "C" PRIMARY KEY, '
        "paused_at timestamptz NOT NULL)",
        "sqlite": f"CREATE TABLE {pauses} (queue TEXT PRIMARY KEY NOT NULL, paused_at INTEGER NOT NULL)",
        "mysql": f"CREATE TABLE {pauses} (queue VARCHAR(255) NOT NULL PRIMARY KEY, paused_at DATETIME(6) NOT NULL) "
        "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    }
    return [statements[names.family]]


async def down(context: Any = None) -> list[str]:
    """Return the statement dropping the table."""
    return [f"DROP TABLE {migration_names(context).pauses}"]

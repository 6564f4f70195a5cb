"""Create the worker registry and the maintenance locks tables.

Applied migrations are never edited: a schema change is a new numbered file next to this one.
"""

from __future__ import annotations

from typing import Any

from litestar_queues.backends.sqlspec.migration_context import migration_names
from litestar_queues.backends.sqlspec.names import TableNames

__all__ = ("down", "up")


def _postgres(names: TableNames) -> list[str]:
    return [
        f'CREATE TABLE {names.workers} (id varchar(255) COLLATE "C" PRIMARY KEY, info text NOT NULL, '
        "expires_at timestamptz NOT NULL)",
        f'CREATE TABLE {names.locks} (name varchar(255) COLLATE "C" PRIMARY KEY, '
        'owner varchar(255) COLLATE "C" NOT NULL, expires_at timestamptz NOT NULL)',
    ]


def _sqlite(names: TableNames) -> list[str]:
    return [
        f"CREATE TABLE {names.workers} (id TEXT PRIMARY KEY NOT NULL, info TEXT NOT NULL, expires_at INTEGER NOT NULL)",
        f"CREATE TABLE {names.locks} (name TEXT PRIMARY KEY NOT NULL, owner TEXT NOT NULL, "
        "expires_at INTEGER NOT NULL)",
    ]


def _mysql(names: TableNames) -> list[str]:
    suffix = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    return [
        f"CREATE TABLE {names.workers} (id VARCHAR(255) NOT NULL PRIMARY KEY, info LONGTEXT NOT NULL, "
        f"expires_at DATETIME(6) NOT NULL) {suffix}",
        f"CREATE TABLE {names.locks} (name VARCHAR(255) NOT NULL PRIMARY KEY, owner VARCHAR(255) NOT NULL, "
        f"expires_at DATETIME(6) NOT NULL) {suffix}",
    ]


async def up(context: Any = None) -> list[str]:
    """Return the statements creating the workers and locks tables."""
    names = migration_names(context)
    builders = {"postgres": _postgres, "sqlite": _sqlite, "mysql": _mysql}
    return builders[names.family](names)


async def down(context: Any = None) -> list[str]:
    """Return the statements dropping both tables."""
    names = migration_names(context)
    return [f"DROP TABLE {names.locks}", f"DROP TABLE {names.workers}"]

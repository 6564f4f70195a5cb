"""Keep the latest progress on each record, and create the event history table.

``progress`` is the JSON of the last progress an attempt reported (``save_progress``). The events table holds
each stored event's wire JSON (``body``) and the columns queries filter and order on: ``occurred_at``, ``seq``
(the event's sequence, ``0`` without one), ``id``, ``task_id``, ``queue`` and ``event_type``. Every index ends
in the history order ``(occurred_at, seq, id)``, so a page of one task, queue or type is one index range, and
retention deletes from the front of the first index.

Applied migrations are never edited: a schema change is a new numbered file next to this one.
"""

from __future__ import annotations

from typing import Any

from litestar_queues.backends.sqlspec.migration_context import migration_names
from litestar_queues.backends.sqlspec.names import TableNames

__all__ = ("down", "up")

_INDEXED = ("task_id", "queue", "event_type")


def _indexes(names: TableNames) -> list[str]:
    """The indexes of PostgreSQL and SQLite: partial where the column may be NULL."""
    events = names.events
    return [
        f"CREATE INDEX {names.index('events_order_ix')} ON {events} (occurred_at, seq, id)",
        *(
            f"CREATE INDEX {names.index(f'events_{column}_ix')} ON {events} ({column}, occurred_at, seq, id)"
            + ("" if column == "event_type" else f" WHERE {column} IS NOT NULL")
            for column in _INDEXED
        ),
    ]


def _postgres(names: TableNames) -> list[str]:
    events = names.events
    return [
        f"ALTER TABLE {names.tasks} ADD COLUMN progress text",
        f"""CREATE TABLE {events} (
    id varchar(255) COLLATE "C" PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    seq bigint NOT NULL,
    task_id varchar(255) COLLATE "C",
    queue varchar(255) COLLATE "C",
    event_type varchar(255) COLLATE "C" NOT NULL,
    body text NOT NULL
)""",
        *_indexes(names),
    ]


def _sqlite(names: TableNames) -> list[str]:
    events = names.events
    return [
        f"ALTER TABLE {names.tasks} ADD COLUMN progress TEXT",
        f"""CREATE TABLE {events} (
    id TEXT PRIMARY KEY NOT NULL,
    occurred_at INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    task_id TEXT,
    queue TEXT,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL
)""",
        *_indexes(names),
    ]


def _mysql(names: TableNames) -> list[str]:
    # Indexes inline: MySQL DDL is not transactional, so nothing is left half made. utf8mb4_bin: ids and names
    # compare exactly and sort by code point, as the history order wants.
    keys = ",\n    ".join(
        f"KEY {names.index(f'events_{column}_ix')} ({column}, occurred_at, seq, id)" for column in _INDEXED
    )
    return [
        f"ALTER TABLE {names.tasks} ADD COLUMN progress LONGTEXT NULL",
        f"""CREATE TABLE {names.events} (
    id VARCHAR(255) NOT NULL,
    occurred_at DATETIME(6) NOT NULL,
    seq BIGINT NOT NULL,
    task_id VARCHAR(255) NULL,
    queue VARCHAR(255) NULL,
    event_type VARCHAR(255) NOT NULL,
    body LONGTEXT NOT NULL,
    PRIMARY KEY (id),
    KEY {names.index("events_order_ix")} (occurred_at, seq, id),
    {keys}
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
    ]


async def up(context: Any = None) -> list[str]:
    """Return the statements adding the progress column and creating the events table and its indexes."""
    names = migration_names(context)
    builders = {"postgres": _postgres, "sqlite": _sqlite, "mysql": _mysql}
    return builders[names.family](names)


async def down(context: Any = None) -> list[str]:
    """Return the statements dropping the events table and the progress column."""
    names = migration_names(context)
    return [f"DROP TABLE {names.events}", f"ALTER TABLE {names.tasks} DROP COLUMN progress"]

"""The queue's tables as SQLAlchemy metadata: define them on the application's ``MetaData`` and Alembic sees them.

``QueueTables(metadata)`` adds five tables (``<prefix>tasks``, ``<prefix>workers``, ``<prefix>locks``,
``<prefix>queue_pauses``, ``<prefix>events``) and their indexes to ``metadata``, the one the application's Alembic
environment compares against (with Advanced Alchemy, ``metadata_registry.get(bind_key)``, which is the default).
``alembic revision --autogenerate`` (``litestar database make-migrations``) then writes their migration like any of
the application's own tables. The layout is the one every SQL backend of litestar-queues stores
(:mod:`litestar_queues.sql.rows`, :mod:`litestar_queues.sql.events`): times are ``timestamptz`` on PostgreSQL,
``DATETIME(6)`` holding UTC on MySQL/MariaDB and integer microseconds since the epoch on SQLite, and structured
values are JSON text.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Double, Index, Integer, MetaData, String, Table, Text, null
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.types import DateTime, TypeEngine

from litestar_queues.errors import ConfigurationError
from litestar_queues.sql.prefix import DEFAULT_TABLE_PREFIX, validate_table_prefix
from litestar_queues.sql.rows import TASK_COLUMNS

__all__ = ("DEFAULT_TABLE_PREFIX", "QueueTables")

_MARK = "litestar_queues"
"""``Table.info`` key marking the tables this module made (so defining them again finds them)."""
_MYSQL = ("mysql", "mariadb")


def _name(length: int = 255) -> TypeEngine[str]:
    """A name compared byte by byte (ids, keys, queues): ``COLLATE "C"`` on PostgreSQL, the table's binary collation on
    MySQL, SQLite's default."""
    return String(length).with_variant(postgresql.VARCHAR(length, collation="C"), "postgresql")


def _json() -> TypeEngine[str]:
    return Text().with_variant(mysql.LONGTEXT(), *_MYSQL)


def _time() -> TypeEngine[Any]:
    return (
        DateTime(timezone=True)
        .with_variant(BigInteger(), "sqlite")
        .with_variant(mysql.DATETIME(fsp=6), *_MYSQL)
        .with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
    )


class QueueTables:
    """The tasks, workers, locks, queue pauses and events tables of one queue on a ``MetaData``.

    Defining them again on the same metadata with the same prefix returns the same tables, so the class may be
    instantiated wherever it is needed (the backend configuration does it for you).

    Example:
        .. code-block:: python

            from advanced_alchemy.base import orm_registry

            QueueTables(orm_registry.metadata)  # now part of the app's migrations
    """

    __slots__ = ("events", "locks", "metadata", "pauses", "prefix", "tasks", "workers")

    def __init__(self, metadata: MetaData | None = None, *, prefix: str = DEFAULT_TABLE_PREFIX) -> None:
        """Define (or find) the tables ``<prefix>tasks``, ``<prefix>workers``, ``<prefix>locks``,
        ``<prefix>queue_pauses`` and ``<prefix>events`` on ``metadata``.

        Args:
            metadata: Where the tables live; a new ``MetaData`` when ``None``.
            prefix: Prefix of the table and index names (``[a-z][a-z0-9_]*``, at most 40 characters).

        Raises:
            ConfigurationError: The prefix is invalid, or ``metadata`` already has a table of that name that this
                class did not define.
        """
        self.metadata = metadata if metadata is not None else MetaData()
        self.prefix = validate_table_prefix(prefix)
        self.tasks = self._table("tasks", _tasks_columns())
        self.workers = self._table("workers", _workers_columns())
        self.locks = self._table("locks", _locks_columns())
        self.pauses = self._table("queue_pauses", _pauses_columns())
        self.events = self._table("events", _events_columns())

    @property
    def all(self) -> tuple[Table, ...]:
        """The five tables, in creation order."""
        return (self.tasks, self.workers, self.locks, self.pauses, self.events)

    def _table(self, suffix: str, columns: list[Column[Any]]) -> Table:
        name = f"{self.prefix}{suffix}"
        existing = self.metadata.tables.get(name)
        if existing is not None:
            if existing.info.get(_MARK) != suffix:
                msg = f"the metadata already holds a table {name!r} that is not a queue table; choose another prefix"
                raise ConfigurationError(msg)
            return existing
        table = Table(
            name,
            self.metadata,
            *columns,
            info={_MARK: suffix},
            mysql_engine="InnoDB",
            mysql_charset="utf8mb4",
            mysql_collate="utf8mb4_bin",
        )
        if suffix == "tasks":
            _index_tasks(table, self.prefix)
        elif suffix == "events":
            _index_events(table, self.prefix)
        return table


def _tasks_columns() -> list[Column[Any]]:
    types: dict[str, tuple[TypeEngine[Any], bool]] = {
        "id": (_name(), False),
        "task_name": (String(1024), False),
        "queue": (_name(), False),
        "args": (_json(), False),
        "kwargs": (_json(), False),
        "priority": (Integer(), False),
        "status": (String(16), False),
        "dedup_key": (_name(), True),
        "active_key": (_name(), True),
        "attempts": (Integer(), False),
        "max_retries": (Integer(), False),
        "retry_delay": (Double(), False),
        "timeout": (Double(), True),
        "created_at": (_time(), False),
        "scheduled_at": (_time(), False),
        "expires_at": (_time(), True),
        "started_at": (_time(), True),
        "finished_at": (_time(), True),
        "result": (_json(), True),
        "error": (_json(), True),
        "execution_backend": (String(255), False),
        "execution_profile": (String(255), True),
        "metadata": (_json(), False),
        "owner": (_name(), True),
        "token": (BigInteger(), False),
        "lease_expires_at": (_time(), True),
        "cancel_requested": (Boolean(), False),
        "progress": (_json(), True),
    }
    return [Column(name, types[name][0], primary_key=name == "id", nullable=types[name][1]) for name in TASK_COLUMNS]


def _index_tasks(table: Table, prefix: str) -> None:
    """Add the tasks table's indexes (an index on a table's columns attaches itself to the table)."""
    c = table.c
    pending = c.status == "pending"
    # One active record per key: the terminal transition clears active_key, which frees the key.
    Index(
        f"{prefix}tasks_active_key_uq",
        c.active_key,
        unique=True,
        postgresql_where=c.active_key.isnot(null()),
        sqlite_where=c.active_key.isnot(null()),
    )
    # Claims read due records of a queue in due order straight from this index.
    Index(
        f"{prefix}tasks_claim_ix",
        c.queue,
        c.status,
        c.priority.desc(),
        c.scheduled_at,
        c.id,
        postgresql_where=pending,
        sqlite_where=pending,
    )
    Index(
        f"{prefix}tasks_lease_ix",
        c.status,
        c.lease_expires_at,
        postgresql_where=c.status == "running",
        sqlite_where=c.status == "running",
    )
    Index(
        f"{prefix}tasks_expiry_ix",
        c.status,
        c.expires_at,
        postgresql_where=pending & c.expires_at.isnot(null()),
        sqlite_where=pending & c.expires_at.isnot(null()),
    )
    Index(
        f"{prefix}tasks_finished_ix",
        c.finished_at,
        postgresql_where=c.finished_at.isnot(null()),
        sqlite_where=c.finished_at.isnot(null()),
    )
    Index(
        f"{prefix}tasks_key_ix",
        c.dedup_key,
        c.created_at,
        postgresql_where=c.dedup_key.isnot(null()),
        sqlite_where=c.dedup_key.isnot(null()),
    )
    # Listing failed, cancelled and expired records; on PostgreSQL and SQLite it can never serve a claim.
    Index(
        f"{prefix}tasks_failed_ix",
        c.status,
        c.queue,
        postgresql_where=c.status.in_(("failed", "cancelled", "expired")),
        sqlite_where=c.status.in_(("failed", "cancelled", "expired")),
    )
    # Finished records by queue and status: bounded counts (``statistics(count_limit=n)``, the dashboard's overview)
    # and a queue's listings of them read an index range. A record enters it when it ends. MySQL/MariaDB, which have
    # no partial indexes, make it a full index (their claim index would serve these reads as well).
    ended = c.status.in_(("completed", "failed", "cancelled", "expired"))
    Index(f"{prefix}tasks_ended_ix", c.queue, c.status, c.id, postgresql_where=ended, sqlite_where=ended)


def _workers_columns() -> list[Column[Any]]:
    return [
        Column("id", _name(), primary_key=True),
        Column("info", _json(), nullable=False),
        Column("expires_at", _time(), nullable=False),
    ]


def _locks_columns() -> list[Column[Any]]:
    return [
        Column("name", _name(), primary_key=True),
        Column("owner", _name(), nullable=False),
        Column("expires_at", _time(), nullable=False),
    ]


def _pauses_columns() -> list[Column[Any]]:
    """One row per paused queue, kept until it is resumed (claims skip the queues listed here)."""
    return [
        Column("queue", _name(), primary_key=True),
        Column("paused_at", _time(), nullable=False),
    ]


def _events_columns() -> list[Column[Any]]:
    """A stored event: its wire JSON (``body``) and the columns queries filter and order on (``seq`` is the event's
    sequence, ``0`` without one)."""
    return [
        Column("id", _name(), primary_key=True),
        Column("occurred_at", _time(), nullable=False),
        Column("seq", BigInteger(), nullable=False),
        Column("task_id", _name(), nullable=True),
        Column("queue", _name(), nullable=True),
        Column("event_type", _name(), nullable=False),
        Column("body", _json(), nullable=False),
    ]


def _index_events(table: Table, prefix: str) -> None:
    """Three B-trees per stored event: the primary key, the history order ``(occurred_at, seq, id)`` (retention deletes
    from its front; queries by type or queue read a bounded window of it) and one task's events in that order. There
    is no index by queue or by type: each would cost every stored event another index insert."""
    c = table.c
    order = (c.occurred_at, c.seq, c.id)
    Index(f"{prefix}events_order_ix", *order)
    present = c.task_id.isnot(null())
    Index(f"{prefix}events_task_id_ix", c.task_id, *order, postgresql_where=present, sqlite_where=present)

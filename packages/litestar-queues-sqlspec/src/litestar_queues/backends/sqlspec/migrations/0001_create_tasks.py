"""Create the tasks table and its indexes.

Applied migrations are never edited: a schema change is a new numbered file next to this one.
"""

from __future__ import annotations

from typing import Any

from litestar_queues.backends.sqlspec.migration_context import migration_names
from litestar_queues.backends.sqlspec.names import TableNames

__all__ = ("down", "up")


def _postgres(names: TableNames) -> list[str]:
    tasks = names.tasks
    return [
        f"""CREATE TABLE {tasks} (
    id varchar(255) COLLATE "C" PRIMARY KEY,
    task_name varchar(1024) NOT NULL,
    queue varchar(255) COLLATE "C" NOT NULL,
    args text NOT NULL,
    kwargs text NOT NULL,
    priority integer NOT NULL,
    status varchar(16) NOT NULL,
    dedup_key varchar(255) COLLATE "C",
    active_key varchar(255) COLLATE "C",
    attempts integer NOT NULL,
    max_retries integer NOT NULL,
    retry_delay double precision NOT NULL,
    timeout double precision,
    created_at timestamptz NOT NULL,
    scheduled_at timestamptz NOT NULL,
    expires_at timestamptz,
    started_at timestamptz,
    finished_at timestamptz,
    result text,
    error text,
    execution_backend varchar(255) NOT NULL,
    execution_profile varchar(255),
    metadata text NOT NULL,
    owner varchar(255) COLLATE "C",
    token bigint NOT NULL,
    lease_expires_at timestamptz,
    cancel_requested boolean NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05)""",
        f"CREATE UNIQUE INDEX {names.index('tasks_active_key_uq')} ON {tasks} (active_key) "
        "WHERE active_key IS NOT NULL",
        f"CREATE INDEX {names.index('tasks_claim_ix')} ON {tasks} (queue, priority DESC, scheduled_at, id) "
        "WHERE status = 'pending'",
        f"CREATE INDEX {names.index('tasks_lease_ix')} ON {tasks} (lease_expires_at) WHERE status = 'running'",
        f"CREATE INDEX {names.index('tasks_expiry_ix')} ON {tasks} (expires_at) "
        "WHERE status = 'pending' AND expires_at IS NOT NULL",
        f"CREATE INDEX {names.index('tasks_finished_ix')} ON {tasks} (finished_at) WHERE finished_at IS NOT NULL",
        f"CREATE INDEX {names.index('tasks_key_ix')} ON {tasks} (dedup_key, created_at) WHERE dedup_key IS NOT NULL",
        f"CREATE INDEX {names.index('tasks_status_ix')} ON {tasks} (status, queue)",
    ]


def _sqlite(names: TableNames) -> list[str]:
    tasks = names.tasks
    return [
        f"""CREATE TABLE {tasks} (
    id TEXT PRIMARY KEY NOT NULL,
    task_name TEXT NOT NULL,
    queue TEXT NOT NULL,
    args TEXT NOT NULL,
    kwargs TEXT NOT NULL,
    priority INTEGER NOT NULL,
    status TEXT NOT NULL,
    dedup_key TEXT,
    active_key TEXT,
    attempts INTEGER NOT NULL,
    max_retries INTEGER NOT NULL,
    retry_delay REAL NOT NULL,
    timeout REAL,
    created_at INTEGER NOT NULL,
    scheduled_at INTEGER NOT NULL,
    expires_at INTEGER,
    started_at INTEGER,
    finished_at INTEGER,
    result TEXT,
    error TEXT,
    execution_backend TEXT NOT NULL,
    execution_profile TEXT,
    metadata TEXT NOT NULL,
    owner TEXT,
    token INTEGER NOT NULL,
    lease_expires_at INTEGER,
    cancel_requested INTEGER NOT NULL
)""",
        f"CREATE UNIQUE INDEX {names.index('tasks_active_key_uq')} ON {tasks} (active_key) "
        "WHERE active_key IS NOT NULL",
        f"CREATE INDEX {names.index('tasks_claim_ix')} ON {tasks} (queue, priority DESC, scheduled_at, id) "
        "WHERE status = 'pending'",
        f"CREATE INDEX {names.index('tasks_lease_ix')} ON {tasks} (lease_expires_at) WHERE status = 'running'",
        f"CREATE INDEX {names.index('tasks_expiry_ix')} ON {tasks} (expires_at) "
        "WHERE status = 'pending' AND expires_at IS NOT NULL",
        f"CREATE INDEX {names.index('tasks_finished_ix')} ON {tasks} (finished_at) WHERE finished_at IS NOT NULL",
        f"CREATE INDEX {names.index('tasks_key_ix')} ON {tasks} (dedup_key, created_at) WHERE dedup_key IS NOT NULL",
        f"CREATE INDEX {names.index('tasks_status_ix')} ON {tasks} (status, queue)",
    ]


def _mysql(names: TableNames) -> list[str]:
    # One statement (indexes inline): MySQL DDL is not transactional, so nothing is left half made.
    # utf8mb4_bin: ids, keys and queue names compare exactly (case-sensitive) and sort by code point.
    return [
        f"""CREATE TABLE {names.tasks} (
    id VARCHAR(255) NOT NULL,
    task_name VARCHAR(1024) NOT NULL,
    queue VARCHAR(255) NOT NULL,
    args LONGTEXT NOT NULL,
    kwargs LONGTEXT NOT NULL,
    priority INT NOT NULL,
    status VARCHAR(16) NOT NULL,
    dedup_key VARCHAR(255) NULL,
    active_key VARCHAR(255) NULL,
    attempts INT NOT NULL,
    max_retries INT NOT NULL,
    retry_delay DOUBLE NOT NULL,
    timeout DOUBLE NULL,
    created_at DATETIME(6) NOT NULL,
    scheduled_at DATETIME(6) NOT NULL,
    expires_at DATETIME(6) NULL,
    started_at DATETIME(6) NULL,
    finished_at DATETIME(6) NULL,
    result LONGTEXT NULL,
    error LONGTEXT NULL,
    execution_backend VARCHAR(255) NOT NULL,
    execution_profile VARCHAR(255) NULL,
    metadata LONGTEXT NOT NULL,
    owner VARCHAR(255) NULL,
    token BIGINT NOT NULL,
    lease_expires_at DATETIME(6) NULL,
    cancel_requested TINYINT(1) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY {names.index("tasks_active_key_uq")} (active_key),
    KEY {names.index("tasks_claim_ix")} (queue, status, priority DESC, scheduled_at, id),
    KEY {names.index("tasks_lease_ix")} (status, lease_expires_at),
    KEY {names.index("tasks_expiry_ix")} (status, expires_at),
    KEY {names.index("tasks_finished_ix")} (finished_at),
    KEY {names.index("tasks_key_ix")} (dedup_key, created_at),
    KEY {names.index("tasks_status_ix")} (status, queue)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"""
    ]


async def up(context: Any = None) -> list[str]:
    """Return the statements creating the tasks table and its indexes."""
    names = migration_names(context)
    builders = {"postgres": _postgres, "sqlite": _sqlite, "mysql": _mysql}
    return builders[names.family](names)


async def down(context: Any = None) -> list[str]:
    """Return the statement dropping the tasks table (its indexes go with it)."""
    return [f"DROP TABLE {migration_names(context).tasks}"]

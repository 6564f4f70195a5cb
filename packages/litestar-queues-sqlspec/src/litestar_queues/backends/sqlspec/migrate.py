"""Apply the packaged schema migrations through SQLSpec's migration runner and version table.

The migrations ship as a SQLSpec *extension* (``migrations/`` in this package, versions recorded as
``ext_<extension>_0001`` …), so the two ways of running them agree on what is applied:

* the backend at startup (``apply_migrations=True``): :class:`SchemaMigrator` drives SQLSpec's
  ``AsyncMigrationRunner`` and ``AsyncMigrationTracker`` for this extension only — never the
  application's own migrations — and serialises concurrent starters with a database lock;
* the application's ``sqlspec upgrade``, when its config lists the extension (see
  :func:`migration_extension_config`).

SQLSpec's ``AsyncMigrationCommands`` is not used directly because it applies every migration the
config knows (the application's too), prints to the console, and takes no cross-process lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlspec.exceptions import DeadlockError
from sqlspec.migrations.context import MigrationContext
from sqlspec.migrations.runner import AsyncMigrationRunner
from sqlspec.migrations.tracker import AsyncMigrationTracker

from litestar_queues.backends.sqlspec.database import Database
from litestar_queues.backends.sqlspec.dialects.base import Dialect
from litestar_queues.backends.sqlspec.names import DEFAULT_TABLE_PREFIX, TableNames, validate_table_prefix

__all__ = ("MIGRATIONS_DIR", "MIGRATIONS_SPEC", "SchemaMigrator", "migration_extension_config")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MIGRATIONS_SPEC = "litestar_queues.backends.sqlspec:migrations"
"""The ``migrations_path`` SQLSpec resolves to :data:`MIGRATIONS_DIR` (``<module>:<subdir>``)."""
_NO_APPLICATION_MIGRATIONS = MIGRATIONS_DIR / "__no_application_migrations__"
"""A directory that never exists: the runner's own ``script_location``, so it lists our extension only."""
DEFAULT_VERSION_TABLE = "ddl_migrations"


def migration_extension_config(table_prefix: str = DEFAULT_TABLE_PREFIX) -> tuple[str, dict[str, Any]]:
    """Return the extension name and options that let ``sqlspec upgrade`` apply the queue tables.

    Example:
        .. code-block:: python

            name, options = migration_extension_config()
            db = AsyncpgConfig(
                connection_config={"dsn": DSN},
                migration_config={"include_extensions": [name]},
                extension_config={name: options},
            )

    Args:
        table_prefix: The ``table_prefix`` of the backend configuration.

    Returns:
        ``(extension name, extension options)``.
    """
    prefix = validate_table_prefix(table_prefix)
    return prefix.rstrip("_"), {"migrations_path": MIGRATIONS_SPEC, "table_prefix": prefix}


class SchemaMigrator:
    """Applies or checks this package's migrations for one table prefix."""

    __slots__ = ("_db", "_dialect", "_names", "_version_table")

    def __init__(self, db: Database, dialect: Dialect, names: TableNames, version_table: str | None = None) -> None:
        """Migrate the tables named by ``names``, recording versions in ``version_table``.

        Args:
            db: Sessions on the SQLSpec configuration.
            dialect: The SQL family (its ``migration_guard`` serialises concurrent migrators).
            names: The table names (their prefix selects the extension name).
            version_table: SQLSpec's version table; defaults to the configuration's
                ``migration_config["version_table_name"]``, else ``ddl_migrations``.
        """
        self._db = db
        self._dialect = dialect
        self._names = names
        migration_config = getattr(db.config, "migration_config", None) or {}
        self._version_table = version_table or migration_config.get("version_table_name", DEFAULT_VERSION_TABLE)

    def _runner(self) -> AsyncMigrationRunner:
        names = self._names
        options = {"migrations_path": MIGRATIONS_SPEC, "table_prefix": names.prefix, "family": names.family}
        extension_configs = {names.extension: options}
        context = MigrationContext.from_config(self._db.config)
        context.extension_config = extension_configs
        return AsyncMigrationRunner(
            _NO_APPLICATION_MIGRATIONS, {names.extension: MIGRATIONS_DIR}, context, extension_configs
        )

    def _tracker(self) -> AsyncMigrationTracker:
        tracker_type = getattr(self._db.config, "migration_tracker_type", AsyncMigrationTracker)
        tracker: AsyncMigrationTracker = tracker_type(self._version_table)
        return tracker

    async def versions(self) -> list[str]:
        """Return every packaged migration version, oldest first."""
        return [version for version, _ in await self._runner().get_migration_files()]

    async def applied(self) -> set[str]:
        """Return the packaged versions recorded as applied (empty if the version table does not exist)."""
        tracker = self._tracker()
        try:
            async with self._db.session() as session:
                records = await tracker.get_applied_migrations(session)
        except Exception:
            return set()
        prefix = f"ext_{self._names.extension}_"
        return {str(record["version_num"]) for record in records if str(record["version_num"]).startswith(prefix)}

    async def pending(self) -> list[str]:
        """Return the packaged versions not applied yet, oldest first."""
        applied = await self.applied()
        return [version for version in await self.versions() if version not in applied]

    async def upgrade(self, revision: str = "head") -> list[str]:
        """Apply pending migrations up to ``revision`` (a version such as ``ext_litestar_queues_0001``, or head).

        Concurrent callers (several processes starting at once) are serialised by the dialect's
        migration guard; each re-reads the applied versions under it, so each migration runs once.

        Returns:
            The versions this call applied.
        """
        async with self._dialect.startup_lock():  # SQLite files: around the first connection too (see the dialect)
            if revision == "head" and not await self.pending():
                return []  # the usual start: a read, no DDL
            return await self._upgrade(revision)

    async def _upgrade(self, revision: str) -> list[str]:
        runner = self._runner()
        tracker = self._tracker()
        dialect = self._dialect
        applied_now: list[str] = []
        async with self._db.session() as session:
            if not dialect.migrates_inside_guard:
                await _while_busy(lambda: tracker.ensure_tracking_table(session))
            async with dialect.migration_guard(session) as use_transaction:
                if dialect.migrates_inside_guard:
                    await tracker.ensure_tracking_table(session)
                applied = {str(record["version_num"]) for record in await tracker.get_applied_migrations(session)}
                for version, path in await runner.get_migration_files():
                    if revision != "head" and version > revision:
                        break
                    if use_transaction is False and not self._db.in_transaction(session):
                        # SQLSpec before 0.67 commits each recorded version, ending the guard's transaction.
                        await dialect.relock(session)
                        records = await tracker.get_applied_migrations(session)
                        applied = {str(record["version_num"]) for record in records}
                    if version in applied:
                        continue
                    migration = await runner.load_migration(path, version)

                    async def record(execution_ms: int, version: str = version, migration: Any = migration) -> None:
                        details = (version, migration["description"], execution_ms, migration["checksum"])
                        try:
                            await tracker.record_migration(session, *details, commit=False)
                        except TypeError:  # SQLSpec before 0.67 (the last for Python 3.10) always commits
                            await tracker.record_migration(session, *details)

                    await runner.execute_upgrade(session, migration, use_transaction=use_transaction, on_success=record)
                    if use_transaction is not False and self._db.in_transaction(session):
                        await session.commit()
                    applied_now.append(version)
        return applied_now


async def _while_busy(action: Callable[[], Awaitable[object]], *, attempts: int = 40) -> None:
    """Run ``action``, retrying while the database reports busy.

    SQLite answers a write from a connection whose read snapshot is stale with SQLITE_BUSY at once, without
    waiting out ``busy_timeout``; that happens to a starter creating the version table while another holds the
    migration lock. Waiting for that starter to finish and trying again is the right answer (bounded: ~8 s).
    """
    for attempt in range(attempts):
        try:
            await action()
        except DeadlockError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(min(0.02 * (attempt + 1), 0.4))
        else:
            return

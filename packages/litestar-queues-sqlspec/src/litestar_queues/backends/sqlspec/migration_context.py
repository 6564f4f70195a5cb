"""What a packaged migration needs to know about where it runs: the SQL family and the table names.

The migrations in ``migrations/`` are run by SQLSpec's migration runner, either by the backend at
startup or by the application's own ``sqlspec upgrade`` (when it lists the ``litestar_queues``
extension). Both pass the extension options (``table_prefix``) and the adapter configuration in
the SQLSpec ``MigrationContext``. Applied migrations import this module, so it must stay stable.
"""

from __future__ import annotations

from typing import Any

from litestar_queues.backends.sqlspec.names import DEFAULT_TABLE_PREFIX, Family, TableNames
from litestar_queues.errors import ConfigurationError

__all__ = ("migration_names",)

_FAMILY_BY_DIALECT: dict[str, Family] = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "sqlite": "sqlite",
    "mysql": "mysql",
    "mariadb": "mysql",
}


def migration_names(context: Any) -> TableNames:
    """Return the table names (quoted for the right family) a migration running in ``context`` targets.

    Args:
        context: SQLSpec's ``MigrationContext`` (``extension_config`` holds this extension's options).

    Raises:
        ConfigurationError: No context, or a database this backend does not support.
    """
    if context is None:
        msg = "litestar-queues migrations need SQLSpec's migration context (run them through SQLSpec)"
        raise ConfigurationError(msg)
    options: dict[str, Any] = dict(context.extension_config or {})
    family = options.get("family") or _FAMILY_BY_DIALECT.get(str(context.dialect or "").lower())
    if family is None:
        msg = f"litestar-queues migrations support PostgreSQL, SQLite and MySQL/MariaDB, not {context.dialect!r}"
        raise ConfigurationError(msg)
    return TableNames(str(options.get("table_prefix", DEFAULT_TABLE_PREFIX)), family)

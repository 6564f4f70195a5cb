"""SQL backend for litestar-queues through SQLSpec: PostgreSQL, SQLite, MySQL/MariaDB."""

from litestar_queues.backends.sqlspec.backend import SQLSpecBackend
from litestar_queues.backends.sqlspec.config import SQLSpecBackendConfig
from litestar_queues.backends.sqlspec.migrate import migration_extension_config

__all__ = ("SQLSpecBackend", "SQLSpecBackendConfig", "migration_extension_config")

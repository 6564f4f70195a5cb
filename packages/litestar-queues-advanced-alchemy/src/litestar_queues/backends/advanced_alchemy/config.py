"""Configuration of the Advanced Alchemy backend: the application's SQLAlchemy setup, or the one its plugin holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import MetaData

from advanced_alchemy.base import metadata_registry
from advanced_alchemy.config import SQLAlchemyAsyncConfig
from litestar_queues.backends.advanced_alchemy.engines import check_alchemy
from litestar_queues.backends.advanced_alchemy.tables import DEFAULT_TABLE_PREFIX, QueueTables
from litestar_queues.errors import ConfigurationError
from litestar_queues.sql.pooler import POOLER_MODES, PoolerMode
from litestar_queues.sql.prefix import validate_table_prefix

if TYPE_CHECKING:
    from litestar_queues.backends.advanced_alchemy.backend import AdvancedAlchemyBackend

__all__ = ("AdvancedAlchemyBackendConfig",)


class AdvancedAlchemyBackendConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Configuration of :class:`~litestar_queues.backends.advanced_alchemy.AdvancedAlchemyBackend`.

    ``alchemy`` is the database: the application's Advanced Alchemy ``SQLAlchemyAsyncConfig``, an
    ``async_sessionmaker`` bound to an engine, or an ``AsyncEngine``. Left out, the ``QueuePlugin`` finds the
    app's Advanced Alchemy config (the one with this ``bind_key``) among its plugins when the app is built; the
    backend never registers Advanced Alchemy's plugin itself.

    The queue's tables are defined on ``metadata`` as soon as the configuration exists, so the application's
    Alembic autogenerate sees them (by default Advanced Alchemy's metadata of ``bind_key``, the one its
    ``create_all`` and migration environment use).

    Example:
        .. code-block:: python

            alchemy = SQLAlchemyAsyncConfig(connection_string="postgresql+asyncpg://app@db/app")
            Litestar(
                plugins=[
                    SQLAlchemyPlugin(config=alchemy),
                    QueuePlugin(QueueConfig(queue_backend=AdvancedAlchemyBackendConfig())),
                ]
            )
    """

    alchemy: Any = None
    """``SQLAlchemyAsyncConfig``, ``async_sessionmaker`` or ``AsyncEngine``; ``None``: the app's Advanced Alchemy
    config of ``bind_key``, found by the ``QueuePlugin``."""
    bind_key: str | None = None
    """Which of the app's Advanced Alchemy configs to use (with ``alchemy=None``); whose metadata holds the tables."""
    metadata: Any = None
    """The ``MetaData`` the tables are defined on; default: the Advanced Alchemy config's (or ``bind_key``'s)."""
    table_prefix: str = DEFAULT_TABLE_PREFIX
    """Prefix of the table and index names (``[a-z][a-z0-9_]*``): ``<prefix>tasks``, ``<prefix>workers``,
    ``<prefix>locks``; notification channels are ``<prefix>wakeup`` and ``<prefix>finish``."""
    create_tables: bool = False
    """Create the tables that are missing when the backend opens (a quick start; applications with migrations
    leave it off and migrate with Alembic)."""
    listen_notify: bool = True
    """PostgreSQL (asyncpg or psycopg): send NOTIFY on new work and finished records and hold one LISTEN
    connection per backend, which enables push wakeups. Ignored on other databases (polling only)."""
    native_statements: bool = True
    """PostgreSQL (asyncpg, psycopg): the statements a worker repeats (enqueue, claim, finish, renew) run straight on
    the driver connection of a pooled connection, compiled once by SQLAlchemy: about 0.3 ms less per statement.
    SQLAlchemy's execution events (``echo``, tracing) then do not see them; ``False`` runs them through SQLAlchemy."""
    connect_timeout: float = 10.0
    """Seconds ``open()`` waits for the database's first answer (one connection of the engine's pool and a ``SELECT
    1``) before raising ``BackendUnavailableError``; the engine's own connect timeouts are the application's."""
    listen_url: str | None = None
    """A PostgreSQL URL for the LISTEN connection alone (``postgresql+asyncpg://…``), when the engine's goes
    through a pooler in transaction mode (PgBouncer), where LISTEN does not work; default: a connection of the
    engine's pool, held while listening."""
    pooler_mode: PoolerMode = "session"
    """PostgreSQL: ``"transaction"`` when the engine's connections go through a pooler in transaction mode
    (PgBouncer's ``pool_mode = transaction``): nothing then LISTENs through the pooler (only on ``listen_url``;
    without one the workers poll), asyncpg learns the backend's array types in one transaction per new connection,
    and ``open()`` checks that the engine prepares no named statements (see ``docs/advanced-alchemy.md``).
    ``"session"``: directly, or through a pooler in session mode."""

    def __post_init__(self) -> None:
        """Check the settings and define the tables on their metadata.

        Raises:
            ConfigurationError: An unusable ``alchemy`` (a synchronous configuration among others), ``metadata`` or
                ``table_prefix``.
        """
        check_alchemy(self.alchemy)
        if not self.connect_timeout > 0:
            raise ConfigurationError(f"connect_timeout must be positive, got {self.connect_timeout!r}")
        if self.metadata is not None and not isinstance(self.metadata, MetaData):
            msg = f"metadata= takes a SQLAlchemy MetaData, got {type(self.metadata).__name__}"
            raise ConfigurationError(msg)
        validate_table_prefix(self.table_prefix)
        if self.pooler_mode not in POOLER_MODES:
            raise ConfigurationError(f"pooler_mode must be one of {list(POOLER_MODES)}, not {self.pooler_mode!r}")
        self.tables()

    def tables(self) -> QueueTables:
        """The queue's tables, on their metadata (defined there at the first call)."""
        metadata = self.metadata
        if metadata is None:
            if isinstance(self.alchemy, SQLAlchemyAsyncConfig) and self.alchemy.metadata is not None:
                metadata = self.alchemy.metadata
            else:
                metadata = metadata_registry.get(self.bind_key)
        return QueueTables(metadata, prefix=self.table_prefix)

    def for_app(self, app_config: Any) -> AdvancedAlchemyBackendConfig:
        """This configuration with ``alchemy`` set to the app's Advanced Alchemy config of ``bind_key``.

        Called by the ``QueuePlugin`` once every plugin of the app has initialised; unchanged when ``alchemy`` is
        set.

        Raises:
            ConfigurationError: The app has no Advanced Alchemy config of ``bind_key``.
        """
        if self.alchemy is not None:
            return self
        from advanced_alchemy.extensions.litestar import SQLAlchemyInitPlugin  # noqa: PLC0415 - Litestar apps only

        found: list[Any] = []
        for plugin in app_config.plugins:
            if isinstance(plugin, SQLAlchemyInitPlugin):
                found.extend(config for config in plugin.config if config not in found)
        matching = [config for config in found if config.bind_key == self.bind_key]
        if not matching:
            keys = sorted(repr(config.bind_key) for config in found) or ["none"]
            msg = (
                f"AdvancedAlchemyBackendConfig(bind_key={self.bind_key!r}) found no Advanced Alchemy config with that "
                f"bind_key among the app's plugins (bind keys there: {', '.join(keys)}): add "
                "SQLAlchemyPlugin(config=SQLAlchemyAsyncConfig(...)) to the app, or pass alchemy=..."
            )
            raise ConfigurationError(msg)
        return msgspec.structs.replace(self, alchemy=matching[0])

    def create_backend(self) -> AdvancedAlchemyBackend:
        """Build the (unopened) backend this configuration describes.

        Raises:
            ConfigurationError: ``alchemy`` is not set and no ``QueuePlugin`` filled it in.
        """
        if self.alchemy is None:
            msg = (
                "AdvancedAlchemyBackendConfig has no database: pass alchemy=<SQLAlchemyAsyncConfig | "
                "async_sessionmaker | AsyncEngine>, or use it in a QueuePlugin next to Advanced Alchemy's "
                "SQLAlchemyPlugin, which fills it in"
            )
            raise ConfigurationError(msg)
        from litestar_queues.backends.advanced_alchemy.backend import AdvancedAlchemyBackend  # noqa: PLC0415

        return AdvancedAlchemyBackend(self)

"""Configuration of the SQL backend: an application-owned SQLSpec configuration, or a URL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from litestar_queues.backends.sqlspec.database import DriverName, detect_driver, family_of
from litestar_queues.backends.sqlspec.names import DEFAULT_TABLE_PREFIX, Family, validate_table_prefix
from litestar_queues.backends.sqlspec.pooler import app_pooler, check_unprepared
from litestar_queues.backends.sqlspec.urls import config_from_url, family_of_url, with_driver
from litestar_queues.config import redact_url
from litestar_queues.errors import ConfigurationError
from litestar_queues.limits import check_seconds
from litestar_queues.sql.pooler import POOLER_MODES, PoolerMode

if TYPE_CHECKING:
    from litestar_queues.backends.sqlspec.backend import SQLSpecBackend

__all__ = ("SQLSpecBackendConfig", "describe_database")


class SQLSpecBackendConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Configuration of :class:`~litestar_queues.backends.sqlspec.SQLSpecBackend`.

    Give exactly one of ``sqlspec_config`` (an ``AsyncpgConfig``, ``PsycopgAsyncConfig``,
    ``AiosqliteConfig`` or ``AsyncmyConfig`` the application already owns: the backend borrows its
    pool and never closes it) or ``dsn`` (the backend creates and closes its own pool).

    Example:
        .. code-block:: python

            QueueConfig(queue_backend=SQLSpecBackendConfig(sqlspec_config=app_db_config))
            QueueConfig(queue_backend=SQLSpecBackendConfig.from_url("sqlite:///jobs.db"))
    """

    sqlspec_config: Any = None
    """An application-owned SQLSpec async adapter configuration (shared pool)."""
    dsn: str | None = None
    """A database URL for a standalone setup (see :meth:`from_url`)."""
    table_prefix: str = DEFAULT_TABLE_PREFIX
    """Prefix of the table, index and channel names (``[a-z][a-z0-9_]*``): ``<prefix>tasks`` and so on."""
    apply_migrations: bool = True
    """Create or upgrade the tables at startup. When ``False``, startup fails with instructions if the
    schema is behind (apply it with ``sqlspec upgrade``, see :func:`migration_extension_config`)."""
    version_table: str | None = None
    """SQLSpec's migration version table; defaults to the SQLSpec configuration's own (``ddl_migrations``)."""
    listen_notify: bool = True
    """PostgreSQL: send NOTIFY on new work and finished records and hold one LISTEN connection per
    backend, which enables push wakeups. Ignored on other databases (polling only)."""
    pooler_mode: PoolerMode | None = None
    """PostgreSQL: ``"transaction"`` when the connections go through a pooler in transaction mode (PgBouncer's
    ``pool_mode = transaction``): the drivers then prepare no named statements, and nothing LISTENs through the
    pooler (see ``direct_dsn``). ``"session"``: directly, or through a pooler in session mode. Default (``None``,
    resolved at construction): with ``sqlspec_config``, what its ``driver_features`` say (``pooler_mode``,
    ``pgbouncer``), else ``"session"``."""
    direct_dsn: str | None = None
    """PostgreSQL: a URL that reaches the server directly (or through a session-mode pooler), used for the LISTEN
    connection only, with the pool's driver. Default: with ``sqlspec_config``, its ``driver_features["direct_dsn"]``.
    Without one, a backend with ``pooler_mode="transaction"`` does not listen and its workers poll (every
    ``poll_interval``); it still sends NOTIFY for the processes that listen."""
    connection_options: dict[str, Any] = msgspec.field(default_factory=dict)
    """With ``dsn``: extra ``connection_config`` entries for the SQLSpec adapter (pool sizes, timeouts)."""
    connect_timeout: float = 10.0
    """Seconds ``open()`` waits for the database's first answer before raising ``BackendUnavailableError``; with
    ``dsn`` also the drivers' own connect timeout for every new connection (``connection_options`` may override)."""

    def __post_init__(self) -> None:
        """Check the combination of settings.

        Raises:
            ConfigurationError: Neither or both of ``sqlspec_config`` and ``dsn``, or an unusable value.
        """
        if (self.sqlspec_config is None) == (self.dsn is None):
            msg = "SQLSpecBackendConfig needs exactly one of sqlspec_config (an app-owned SQLSpec config) or dsn"
            raise ConfigurationError(msg)
        if self.sqlspec_config is not None:
            detect_driver(self.sqlspec_config)
            if self.connection_options:
                msg = "connection_options apply to dsn setups only; configure the SQLSpec config itself instead"
                raise ConfigurationError(msg)
        validate_table_prefix(self.table_prefix)
        msgspec.structs.force_setattr(
            self, "connect_timeout", check_seconds(self.connect_timeout, "connect_timeout", positive=True)
        )
        self._resolve_pooler()

    def _resolve_pooler(self) -> None:
        """Check ``pooler_mode`` and ``direct_dsn``; fill in ``pooler_mode`` (from an app-owned configuration's)."""
        family: Family
        driver: DriverName | None = None
        app_mode: str | None = None
        if self.sqlspec_config is not None:
            driver = detect_driver(self.sqlspec_config)
            family = family_of(driver)
            app_mode = app_pooler(self.sqlspec_config)[0]
        else:
            assert self.dsn is not None
            family = family_of_url(self.dsn)
        mode, direct = self.pooler_mode, self.direct_dsn
        if family != "postgres" and (mode not in {None, "session"} or direct is not None):
            msg = f"pooler_mode='transaction' and direct_dsn apply to PostgreSQL only, not to {family}"
            raise ConfigurationError(msg)
        if mode not in {None, *POOLER_MODES}:
            msg = f"pooler_mode must be one of {list(POOLER_MODES)}, not {mode!r}"
            raise ConfigurationError(msg)
        if app_mode is not None and app_mode not in POOLER_MODES:
            msg = f"the SQLSpec configuration's pooler_mode {app_mode!r} is not supported: use 'transaction' pooling"
            raise ConfigurationError(msg)
        if mode == "session" and app_mode is not None:
            msg = f"pooler_mode={mode!r} contradicts the SQLSpec configuration's pooler_mode {app_mode!r}"
            raise ConfigurationError(msg)
        mode = mode or app_mode or "session"
        if direct is not None:
            if family_of_url(direct) != "postgres":
                msg = f"direct_dsn must be a postgresql:// URL, not {redact_url(direct)!r}"
                raise ConfigurationError(msg)
            if not self.listen_notify:
                msg = "direct_dsn is only used to LISTEN, which listen_notify=False turns off"
                raise ConfigurationError(msg)
        if mode == "transaction" and driver is not None:
            check_unprepared(self.sqlspec_config, driver)
        msgspec.structs.force_setattr(self, "pooler_mode", mode)

    @classmethod
    def from_url(cls, url: str, **settings: Any) -> SQLSpecBackendConfig:
        """Return a standalone configuration for a database URL.

        Accepts ``postgresql://`` (asyncpg, or ``postgresql+psycopg://``), ``sqlite:///path/to/jobs.db``
        and ``mysql://`` / ``mariadb://`` (asyncmy) URLs.

        Args:
            url: The database URL.
            **settings: Other fields of this class (``table_prefix``, ``listen_notify``, …).

        Raises:
            ConfigurationError: The URL is not one of the supported forms.
        """
        config_from_url(url, settings.get("connection_options"))  # validate now, not at startup (nothing connects)
        return cls(dsn=url, **settings)

    def create_sqlspec_config(self) -> tuple[Any, bool]:
        """Return the SQLSpec adapter configuration to use and whether the backend owns (and closes) it."""
        if self.sqlspec_config is not None:
            return self.sqlspec_config, False
        assert self.dsn is not None
        return (
            config_from_url(
                self.dsn,
                self.connection_options,
                connect_timeout=self.connect_timeout,
                pooler_mode=self.pooler_mode or "session",
            ),
            True,
        )

    @property
    def listen_url(self) -> str | None:
        """The URL the LISTEN connection goes to when it must not go through the pool's pooler: ``direct_dsn``, else
        an app-owned configuration's ``driver_features["direct_dsn"]``; ``None``: a connection like the pool's."""
        if self.direct_dsn is None and self.sqlspec_config is not None:
            return app_pooler(self.sqlspec_config)[1]
        return self.direct_dsn

    def direct_listen_config(self, driver: str) -> Any:
        """The SQLSpec configuration of the LISTEN connection for :attr:`listen_url`, with the pool's ``driver``;
        ``None`` without one (a connection like the pool's)."""
        url = self.listen_url
        return None if url is None else config_from_url(with_driver(url, driver), connect_timeout=self.connect_timeout)

    def create_backend(self) -> SQLSpecBackend:
        """Build the (unopened) backend this configuration describes."""
        from litestar_queues.backends.sqlspec.backend import SQLSpecBackend  # noqa: PLC0415 - the backend imports this module

        return SQLSpecBackend(self)


def describe_database(config: SQLSpecBackendConfig, sqlspec_config: Any) -> str:
    """Where the database is, for messages, without its password: the URL, else the adapter's connection settings."""
    if config.dsn is not None:
        return redact_url(config.dsn)
    settings = getattr(sqlspec_config, "connection_config", None) or {}
    for name in ("dsn", "conninfo"):
        if isinstance(settings.get(name), str):
            return redact_url(settings[name])
    if "host" in settings or "port" in settings:
        return f"{settings.get('host', 'localhost')}:{settings.get('port', '?')}/{settings.get('database', '')}"
    return str(settings.get("database", type(sqlspec_config).__name__))

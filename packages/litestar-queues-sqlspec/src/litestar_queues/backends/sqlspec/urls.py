"""Turn a database URL into the SQLSpec adapter configuration of a standalone (backend-owned) setup.

========================================  ===========================================
URL                                       SQLSpec configuration
========================================  ===========================================
``postgresql://…`` / ``postgres://…``     ``AsyncpgConfig`` (``PsycopgAsyncConfig`` if asyncpg is absent)
``postgresql+asyncpg://…``                ``AsyncpgConfig``
``postgresql+psycopg://…``                ``PsycopgAsyncConfig`` (autocommit)
``sqlite:///relative/path.db``            ``AiosqliteConfig`` (WAL, ``busy_timeout``, autocommit)
``sqlite:////absolute/path.db``           same, absolute path
``mysql://…`` / ``mariadb://…``           ``AsyncmyConfig`` (autocommit, utf8mb4)
``mysql+asyncmy://…``                     ``AsyncmyConfig``
========================================  ===========================================

With ``pooler_mode="transaction"`` (a PgBouncer in transaction mode in between) the PostgreSQL drivers prepare no
named statements, and asyncpg learns the backend's array types in one transaction per connection (see
:mod:`litestar_queues.sql.pooler`).
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any
from urllib.parse import unquote, urlsplit

from litestar_queues.backends.sqlspec.names import Family
from litestar_queues.errors import ConfigurationError
from litestar_queues.sql.pooler import learn_array_types, unprepared_options

__all__ = ("SCHEMES", "config_from_url", "family_of_url", "with_driver")

_SQLITE_BUSY_TIMEOUT_SECONDS = 30.0

SCHEMES = frozenset({"postgresql", "postgres", "sqlite", "mysql", "mariadb"})
"""URL schemes (before an optional ``+driver``) this backend accepts."""

_DRIVER_EXTRA = {"asyncpg": "asyncpg", "psycopg": "psycopg", "aiosqlite": "aiosqlite", "asyncmy": "asyncmy"}


async def _keep_session(connection: Any) -> None:
    """asyncpg pool ``reset`` hook that sends nothing.

    The default reset costs a round trip on every release (``RESET ALL``, ``UNLISTEN *``, …) and doubles
    the latency of one-statement operations. The backend leaves no session state behind (even its
    migration lock is transaction-level); asyncpg still rolls back an open transaction itself before
    calling the hook.
    """
    del connection


def _require(driver: str) -> None:
    if importlib.util.find_spec(driver) is None:
        msg = f"the {driver} driver is not installed: pip install 'litestar-queues-sqlspec[{_DRIVER_EXTRA[driver]}]'"
        raise ConfigurationError(msg)


def _split_scheme(url: str) -> tuple[str, str | None, str]:
    scheme, separator, rest = url.partition("://")
    if not separator:
        msg = f"not a database URL: {url!r} (expected e.g. postgresql://user@host/db or sqlite:///jobs.db)"
        raise ConfigurationError(msg)
    base, _, driver = scheme.lower().partition("+")
    if base not in SCHEMES:
        msg = f"unsupported database URL scheme {scheme!r}; use one of {sorted(SCHEMES)} (optionally +driver)"
        raise ConfigurationError(msg)
    return base, driver or None, rest


def family_of_url(url: str) -> Family:
    """Return the SQL family a database URL names.

    Raises:
        ConfigurationError: Not a database URL of a supported scheme.
    """
    base = _split_scheme(url)[0]
    return "postgres" if base in {"postgresql", "postgres"} else "sqlite" if base == "sqlite" else "mysql"


def with_driver(url: str, driver: str) -> str:
    """Return the PostgreSQL ``url`` with its scheme naming ``driver`` (``postgresql+asyncpg://…``)."""
    return f"postgresql+{driver}://{_split_scheme(url)[2]}"


def config_from_url(
    url: str, options: dict[str, Any] | None = None, *, connect_timeout: float = 10.0, pooler_mode: str = "session"
) -> Any:
    """Return a new SQLSpec adapter configuration for ``url``.

    Args:
        url: The database URL (see the module table).
        options: Extra ``connection_config`` entries (pool sizes, timeouts, …) merged over the defaults.
        connect_timeout: Seconds a new connection may take to be established (the driver's connect timeout).
        pooler_mode: PostgreSQL: ``"transaction"`` behind a transaction-mode pooler (no named prepared statements).

    Raises:
        ConfigurationError: The URL is malformed, its scheme or driver is unsupported, or the driver is missing.
    """
    base, driver, rest = _split_scheme(url)
    extra = dict(options or {})
    if base in {"postgresql", "postgres"}:
        if driver is None:
            driver = "asyncpg" if importlib.util.find_spec("asyncpg") is not None else "psycopg"
        if driver not in {"asyncpg", "psycopg"}:
            msg = f"unsupported PostgreSQL driver {driver!r}; use asyncpg or psycopg"
            raise ConfigurationError(msg)
        _require(driver)
        dsn = f"postgresql://{rest}"
        unprepared = unprepared_options(driver) if pooler_mode == "transaction" else {}
        if driver == "asyncpg":
            from sqlspec.adapters.asyncpg import AsyncpgConfig  # noqa: PLC0415 - optional driver

            return AsyncpgConfig(
                connection_config={
                    "dsn": dsn,
                    "reset": _keep_session,
                    "timeout": connect_timeout,
                    **unprepared,
                    **extra,
                },
                driver_features={"on_connection_create": learn_array_types} if unprepared else {},
            )
        from sqlspec.adapters.psycopg import PsycopgAsyncConfig  # noqa: PLC0415 - optional driver

        # libpq's connect_timeout is whole seconds, at least 2; the pool's timeout bounds waiting for a connection.
        # These kwargs reach every new connection, the pool's and create_connection()'s.
        connect = {"connect_timeout": max(2, math.ceil(connect_timeout)), **unprepared}
        return PsycopgAsyncConfig(
            connection_config={
                "conninfo": dsn,
                "autocommit": True,
                "timeout": connect_timeout,
                "kwargs": connect,
                **extra,
            }
        )
    if base == "sqlite":
        if driver not in {None, "aiosqlite"}:
            msg = f"unsupported SQLite driver {driver!r}; use aiosqlite"
            raise ConfigurationError(msg)
        _require("aiosqlite")
        path, _, query = rest.partition("?")
        if query or not path.startswith("/") or len(path) < 2:
            msg = f"expected sqlite:///relative.db or sqlite:////absolute/path.db, got {url!r}"
            raise ConfigurationError(msg)
        from sqlspec.adapters.aiosqlite import AiosqliteConfig  # noqa: PLC0415 - optional driver

        # timeout is SQLite's busy_timeout: processes sharing the file queue for its write lock, and several
        # starting at once wait for each other's migrations, so wait longer than sqlite3's 5 s default.
        sqlite = {"database": path[1:], "isolation_level": None, "timeout": _SQLITE_BUSY_TIMEOUT_SECONDS}
        return AiosqliteConfig(connection_config={**sqlite, **extra})
    if driver not in {None, "asyncmy"}:
        msg = f"unsupported MySQL driver {driver!r}; use asyncmy (aiomysql mangles bytes parameters)"
        raise ConfigurationError(msg)
    _require("asyncmy")
    parts = urlsplit(f"mysql://{rest}")
    if parts.query:
        msg = f"query parameters are not supported in MySQL URLs ({url!r}); pass connection_options instead"
        raise ConfigurationError(msg)
    from sqlspec.adapters.asyncmy import AsyncmyConfig  # noqa: PLC0415 - optional driver

    connection: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "database": unquote(parts.path.lstrip("/")),
        "autocommit": True,
        "charset": "utf8mb4",
        "connect_timeout": connect_timeout,
    }
    if parts.password is not None:
        connection["password"] = unquote(parts.password)
    return AsyncmyConfig(connection_config={**connection, **extra})

"""What an application's own SQLSpec configuration says about a pooler in transaction mode (PgBouncer), and whether
it is fit for one.

The backend follows such a configuration, never changes it: its ``driver_features`` name the mode (and a
``direct_dsn`` to LISTEN on), and it must already prepare no named statements (see
:mod:`litestar_queues.sql.pooler` for why); URL setups get the pooler settings from ``urls``.
"""

from __future__ import annotations

from typing import Any

from litestar_queues.errors import ConfigurationError

__all__ = ("app_pooler", "check_unprepared")

_ASYNCPG_STATEMENT_CACHE = 100  # asyncpg's default statement_cache_size
_PSYCOPG_PREPARE_THRESHOLD = 5  # psycopg's default prepare_threshold


def app_pooler(sqlspec_config: Any) -> tuple[str | None, str | None]:
    """What an application's SQLSpec configuration says about a pooler that pools by less than a session: its
    mode (``"transaction"``, ``"statement"``, else ``None``) and its ``direct_dsn`` URL (SQLSpec 0.67+
    ``driver_features``; the ``pgbouncer`` flag, also in older versions, means transaction mode)."""
    features = getattr(sqlspec_config, "driver_features", None) or {}
    mode = features.get("pooler_mode")
    if mode not in {"transaction", "statement"}:
        mode = "transaction" if features.get("pgbouncer") or features.get("pgbouncer_mode") else None
    direct = features.get("direct_dsn")
    return mode, (direct if isinstance(direct, str) else None)


def check_unprepared(sqlspec_config: Any, driver: str) -> None:
    """Require an application's SQLSpec configuration behind a transaction-mode pooler to prepare no named
    statements.

    Raises:
        ConfigurationError: The configuration leaves asyncpg's statement cache or psycopg's automatic preparing on.
    """
    settings = dict(getattr(sqlspec_config, "connection_config", None) or {})
    settings = {**(settings.get("kwargs") or {}), **settings}
    features = getattr(sqlspec_config, "driver_features", None) or {}
    if driver == "asyncpg":
        if features.get("pgbouncer") or settings.get("statement_cache_size", _ASYNCPG_STATEMENT_CACHE) == 0:
            return
        fix = 'connection_config={"statement_cache_size": 0, ...}'
    else:
        if settings.get("prepare_threshold", _PSYCOPG_PREPARE_THRESHOLD) is None:
            return
        fix = 'connection_config={"prepare_threshold": None, ...}'
    msg = (
        f"pooler_mode='transaction' needs a SQLSpec {driver} configuration that prepares no named statements "
        "(through a transaction-mode pooler the next use lands on another server connection): give it "
        f"driver_features={{'pooler_mode': 'transaction'}} (SQLSpec 0.67+) or {fix}"
    )
    raise ConfigurationError(msg)

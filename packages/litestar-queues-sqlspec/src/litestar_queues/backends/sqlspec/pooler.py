"""PostgreSQL behind a connection pooler in transaction mode (PgBouncer's ``pool_mode = transaction`` and the like).

Such a pooler lends a server connection for one transaction at a time, so nothing may outlive a transaction on
a connection. The backend's own statements keep nothing (no ``SET``, no temporary tables; the migration lock is
transaction-level), which leaves three things:

* **Named prepared statements.** asyncpg prepares and caches one per statement text and connection, psycopg
  prepares a statement after its fifth run; through the pooler the next use lands on another server connection
  ("prepared statement … does not exist" / "already exists"). URL setups turn both off (``statement_cache_size=0``,
  ``prepare_threshold=None``: the drivers then send unnamed statements, one per execution). An application's own
  SQLSpec configuration must do it itself (``driver_features={"pooler_mode": "transaction"}`` on SQLSpec 0.67+);
  it is checked, never changed.
* **asyncpg's type introspection.** asyncpg learns an array type it has no codec for (the backend binds
  ``varchar[]``, ``bigint[]`` and ``timestamptz[]``) with three statements that turn ``jit`` off for the *session*
  around a catalog query and back on after it (``set_config('jit', …, false)``). Through the pooler they land on
  three server connections: the query may run with JIT (seconds on a busy server; a worker's first finish waited
  behind it) and other clients' server connections are left with ``jit`` changed. URL setups learn those types
  when a connection is created, inside one transaction (so on one server connection), before any operation.
* **LISTEN.** A subscription lives on one server connection, which the pooler lends to other clients between
  transactions: notifications go nowhere. The LISTEN connection goes to ``direct_dsn`` instead, which reaches the
  server directly (or through a pooler in session mode); without one the backend does not listen and workers poll.
  NOTIFY works through the pooler (it is sent at commit), so processes that do listen still hear every enqueue.
"""

from __future__ import annotations

from typing import Any, Literal

from litestar_queues.errors import ConfigurationError

__all__ = (
    "BOUND_ARRAY_TYPES",
    "POOLER_MODES",
    "PoolerMode",
    "app_pooler",
    "check_unprepared",
    "learn_array_types",
    "unprepared_options",
)

PoolerMode = Literal["session", "transaction"]
"""How connections reach PostgreSQL: directly or through a session-mode pooler, or through a transaction-mode one."""

POOLER_MODES: tuple[PoolerMode, ...] = ("session", "transaction")

_ASYNCPG_STATEMENT_CACHE = 100  # asyncpg's default statement_cache_size
_PSYCOPG_PREPARE_THRESHOLD = 5  # psycopg's default prepare_threshold

BOUND_ARRAY_TYPES = ("varchar[]", "bigint[]", "timestamptz[]")
"""The array types the backend's PostgreSQL statements bind or return, which asyncpg introspects on first use."""

_LEARN_ARRAYS = "SELECT " + ", ".join(f"CAST(${n} AS {t})" for n, t in enumerate(BOUND_ARRAY_TYPES, start=1))


async def learn_array_types(connection: Any) -> None:
    """asyncpg ``on_connection_create`` hook behind a transaction-mode pooler: introspect :data:`BOUND_ARRAY_TYPES`
    inside one transaction (see the module docstring); the codecs then stay with the client connection."""
    async with connection.transaction():
        await connection.fetchrow(_LEARN_ARRAYS, *(None for _ in BOUND_ARRAY_TYPES))


def unprepared_options(driver: str) -> dict[str, Any]:
    """``connection_config`` entries that keep ``driver`` from preparing named statements (psycopg's go to the
    ``kwargs`` that every new connection receives)."""
    if driver == "asyncpg":
        return {"statement_cache_size": 0}
    return {"prepare_threshold": None}


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

"""PostgreSQL behind a connection pooler in transaction mode (PgBouncer's ``pool_mode = transaction`` and the like).

Such a pooler lends a server connection for one transaction at a time, so nothing may outlive a transaction on a
connection. The SQL backends' own statements keep nothing (no ``SET``, no temporary tables, no session advisory
locks), which leaves three things, the same whichever library (SQLSpec, SQLAlchemy) reaches the driver:

* **Named prepared statements.** asyncpg prepares and caches one per statement text and connection, psycopg
  prepares a statement after its fifth run; through the pooler the next use lands on another server connection
  ("prepared statement … does not exist" / "already exists"). :func:`unprepared_options` are the driver settings
  that turn both off (the drivers then send unnamed statements, one per execution).
* **asyncpg's type introspection.** asyncpg learns an array type it has no codec for (the backends bind
  :data:`BOUND_ARRAY_TYPES`) with three statements that turn ``jit`` off for the *session* around a catalog query
  and back on after it (``set_config('jit', …, false)``). Through the pooler they land on three server connections:
  the query may run with JIT (seconds on a busy server; a worker's first finish waited behind it) and other
  clients' server connections are left with ``jit`` changed. :func:`learn_array_types` learns them when a
  connection is created, inside one transaction (so on one server connection), before any operation.
* **LISTEN.** A subscription lives on one server connection, which the pooler lends to other clients between
  transactions: notifications go nowhere. The LISTEN connection goes to a URL that reaches the server directly
  (or through a pooler in session mode) instead; without one the backend does not listen and workers poll
  (:func:`listens`). NOTIFY works through the pooler (it is sent at commit), so processes that do listen still
  hear every enqueue.

Nothing here imports a driver: connections are used through their methods.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

__all__ = (
    "BOUND_ARRAY_TYPES",
    "POOLER_MODES",
    "PoolerMode",
    "learn_array_types",
    "listens",
    "unprepared_options",
)

logger = logging.getLogger("litestar_queues.sql")

PoolerMode = Literal["session", "transaction"]
"""How connections reach PostgreSQL: directly or through a session-mode pooler, or through a transaction-mode one."""

POOLER_MODES: tuple[PoolerMode, ...] = ("session", "transaction")

BOUND_ARRAY_TYPES = ("varchar[]", "bigint[]", "timestamptz[]")
"""The array types the backends' PostgreSQL statements bind or return, which asyncpg introspects on first use."""

_LEARN_ARRAYS = "SELECT " + ", ".join(f"CAST(${n} AS {t})" for n, t in enumerate(BOUND_ARRAY_TYPES, start=1))


async def learn_array_types(connection: Any) -> None:
    """Introspect :data:`BOUND_ARRAY_TYPES` on a new asyncpg ``connection`` inside one transaction (see the module
    docstring); the codecs then stay with the client connection."""
    async with connection.transaction():
        await connection.fetchrow(_LEARN_ARRAYS, *(None for _ in BOUND_ARRAY_TYPES))


def unprepared_options(driver: str) -> dict[str, Any]:
    """The connect options that keep ``driver`` (``"asyncpg"`` or ``"psycopg"``) from preparing named statements."""
    if driver == "asyncpg":
        return {"statement_cache_size": 0}
    return {"prepare_threshold": None}


def listens(pooler_mode: PoolerMode, direct_url: str | None, where: str) -> bool:
    """Whether a PostgreSQL backend that notifies can also LISTEN: not through a transaction-mode pooler without a
    ``direct_url`` to listen on (logged, naming ``where``: its workers then poll)."""
    if pooler_mode != "transaction" or direct_url is not None:
        return True
    logger.info("%s is behind a transaction-mode pooler and has no direct URL to LISTEN on: workers poll", where)
    return False

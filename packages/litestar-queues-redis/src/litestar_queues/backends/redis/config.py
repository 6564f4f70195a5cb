"""``RedisBackendConfig``: where the Redis server is, or the redis-py client the app already owns."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import ClassVar

from redis.asyncio import ConnectionPool, Redis, RedisCluster

from litestar_queues.backends.redis.backend import RedisBackend
from litestar_queues.backends.resp import RespBackendConfig

__all__ = ("RedisBackendConfig",)


@dataclass
class RedisBackendConfig(RespBackendConfig):
    """Configuration of the Redis backend (redis-py's asyncio client).

    Give at most one of ``url``, ``client`` and ``connection_pool``; with none, ``redis://localhost:6379/0``.
    ``valkey://`` URLs work too. Every other setting is described on ``RespBackendConfig``.

    Example:
        .. code-block:: python

            QueueConfig(queue_backend=RedisBackendConfig(url="redis://localhost:6379/0", key_prefix="myapp"))

    Attributes:
        client: A ``redis.asyncio.Redis`` (or ``RedisCluster``) the app already owns; used as is and never closed.
        connection_pool: A ``redis.asyncio.ConnectionPool`` the app already owns; never closed.
    """

    default_url: ClassVar[str] = "redis://localhost:6379/0"

    _: KW_ONLY
    client: Redis | RedisCluster | None = None
    connection_pool: ConnectionPool | None = None

    def create_backend(self) -> RedisBackend:
        """Build the (unopened) backend this configuration describes."""
        return RedisBackend(self)

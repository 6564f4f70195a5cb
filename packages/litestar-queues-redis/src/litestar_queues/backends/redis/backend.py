"""``RedisBackend``: the shared Redis-protocol backend wired to redis-py's asyncio client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from redis import exceptions
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from litestar_queues.backends.resp import RespBackend, RespClusterClient, RespErrorTypes, RespPubSub, RespServerClient

if TYPE_CHECKING:
    from litestar_queues.backends.redis.config import RedisBackendConfig

__all__ = ("RedisBackend",)

_ERRORS = RespErrorTypes(
    connection=(
        exceptions.ConnectionError,
        exceptions.TimeoutError,
        exceptions.ReadOnlyError,
        exceptions.ClusterDownError,
    ),
    no_script=exceptions.NoScriptError,
)
_SCHEMES = {"valkey://": "redis://", "valkeys://": "rediss://"}


def _redis_scheme(url: str) -> str:
    """``url`` with a ``valkey(s)://`` scheme spelled ``redis(s)://``, which redis-py understands."""
    for scheme, replacement in _SCHEMES.items():
        if url.startswith(scheme):
            return replacement + url[len(scheme) :]
    return url


class RedisBackend(RespBackend):
    """Queue storage on Redis (6.2 or newer), through redis-py.

    Build it with ``RedisBackendConfig(...).create_backend()`` and use it as an async context manager.
    """

    name: ClassVar[str] = "redis"
    config: RedisBackendConfig

    def __init__(self, config: RedisBackendConfig) -> None:
        """Create an unopened backend.

        Args:
            config: The configuration.
        """
        super().__init__(config, _ERRORS)

    def _client_from_url(self, url: str, options: dict[str, Any]) -> RespServerClient:
        url = _redis_scheme(url)
        # redis-py retries commands by default; a retried script could apply twice, so the backend raises
        # RespConnectionError instead and the caller decides
        return Redis.from_pool(BlockingConnectionPool.from_url(url, **{"retry": Retry(NoBackoff(), 0), **options}))

    def _client_from_pool(self, pool: ConnectionPool) -> RespServerClient:
        return Redis(connection_pool=pool)

    def _cluster_client_from_url(self, url: str, options: dict[str, Any]) -> RespClusterClient:
        url = _redis_scheme(url)
        # no retry after a connection error (a retried script could apply twice); MOVED/ASK are still followed
        return RedisCluster.from_url(url, **{"retry": Retry(NoBackoff(), 0), **options})

    def _is_cluster_client(self, client: object) -> bool:
        return isinstance(client, RedisCluster)

    def _node_pubsub(self, node: ClusterNode) -> RespPubSub:
        pool = ConnectionPool(connection_class=node.connection_class, **node.connection_kwargs)
        return Redis(connection_pool=pool).pubsub()

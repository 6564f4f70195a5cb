"""``ValkeyBackend``: the shared Redis-protocol backend wired to valkey-py's asyncio client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from valkey import exceptions
from valkey.asyncio import BlockingConnectionPool, ConnectionPool, Valkey
from valkey.asyncio.cluster import ClusterNode, ValkeyCluster

from litestar_queues.backends.resp import RespBackend, RespClusterClient, RespErrorTypes, RespPubSub, RespServerClient

if TYPE_CHECKING:
    from litestar_queues.backends.valkey.config import ValkeyBackendConfig

__all__ = ("ValkeyBackend",)

_ERRORS = RespErrorTypes(
    connection=(
        exceptions.ConnectionError,
        exceptions.TimeoutError,
        exceptions.ReadOnlyError,
        exceptions.ClusterDownError,
    ),
    no_script=exceptions.NoScriptError,
)


class ValkeyBackend(RespBackend):
    """Queue storage on Valkey (7.2 or newer), through valkey-py.

    Build it with ``ValkeyBackendConfig(...).create_backend()`` and use it as an async context manager.
    """

    name: ClassVar[str] = "valkey"
    config: ValkeyBackendConfig

    def __init__(self, config: ValkeyBackendConfig) -> None:
        """Create an unopened backend.

        Args:
            config: The configuration.
        """
        super().__init__(config, _ERRORS)

    def _client_from_url(self, url: str, options: dict[str, Any]) -> RespServerClient:
        # valkey-py does not retry commands unless asked to, which is what the backend needs: a retried script
        # could apply twice, so the backend raises RespConnectionError instead and the caller decides
        client: RespServerClient = Valkey.from_pool(BlockingConnectionPool.from_url(url, **options))
        return client

    def _client_from_pool(self, pool: ConnectionPool) -> RespServerClient:
        return Valkey(connection_pool=pool)

    def _cluster_client_from_url(self, url: str, options: dict[str, Any]) -> RespClusterClient:
        # valkey-py runs a cluster pipeline `cluster_error_retry_attempts` times at most (0 would never run it), so
        # 1 means once; the scripts go only through pipelines in cluster mode, so none is retried after a connection
        # error (a retried script could apply twice), while MOVED/ASK are still followed
        client: RespClusterClient = ValkeyCluster.from_url(url, **{"cluster_error_retry_attempts": 1, **options})
        return client

    def _is_cluster_client(self, client: object) -> bool:
        return isinstance(client, ValkeyCluster)

    def _node_pubsub(self, node: ClusterNode) -> RespPubSub:
        pool = ConnectionPool(connection_class=node.connection_class, **node.connection_kwargs)
        pubsub: RespPubSub = Valkey(connection_pool=pool).pubsub()
        return pubsub

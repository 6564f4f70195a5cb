"""Shared Redis-protocol storage logic (Lua scripts, key layout) for the Redis and Valkey backends of litestar-queues.

Imports neither redis-py nor valkey-py: ``litestar_queues.backends.redis`` and ``litestar_queues.backends.valkey``
subclass :class:`RespBackend` and :class:`RespBackendConfig` with their own client wiring.
"""

from litestar_queues.backends.resp.backend import RespBackend
from litestar_queues.backends.resp.client import (
    RespClient,
    RespClusterClient,
    RespErrorTypes,
    RespPipeline,
    RespPubSub,
    RespServerClient,
)
from litestar_queues.backends.resp.config import RespBackendConfig, describe_server, hash_tagged, redact_url
from litestar_queues.backends.resp.connection import RespConnectionError

__all__ = (
    "RespBackend",
    "RespBackendConfig",
    "RespClient",
    "RespClusterClient",
    "RespConnectionError",
    "RespErrorTypes",
    "RespPipeline",
    "RespPubSub",
    "RespServerClient",
    "describe_server",
    "hash_tagged",
    "redact_url",
)

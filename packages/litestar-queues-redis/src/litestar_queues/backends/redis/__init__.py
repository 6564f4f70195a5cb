"""Redis backend for litestar-queues (redis-py).

Example:
    .. code-block:: python

        from litestar_queues.backends.redis import RedisBackendConfig

        config = RedisBackendConfig(url="redis://localhost:6379/0", key_prefix="myapp")
"""

from litestar_queues.backends.redis.backend import RedisBackend
from litestar_queues.backends.redis.config import RedisBackendConfig

__all__ = ("RedisBackend", "RedisBackendConfig")

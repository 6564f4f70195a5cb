"""Valkey backend for litestar-queues (valkey-py).

Example:
    .. code-block:: python

        from litestar_queues.backends.valkey import ValkeyBackendConfig

        config = ValkeyBackendConfig(url="valkey://localhost:6379/0", key_prefix="myapp")
"""

from litestar_queues.backends.valkey.backend import ValkeyBackend
from litestar_queues.backends.valkey.config import ValkeyBackendConfig

__all__ = ("ValkeyBackend", "ValkeyBackendConfig")

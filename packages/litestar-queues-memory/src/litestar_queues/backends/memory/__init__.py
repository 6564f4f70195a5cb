"""In-process memory backend for litestar-queues (the default and the reference implementation)."""

from litestar_queues.backends.memory.backend import MemoryBackend
from litestar_queues.backends.memory.config import MemoryBackendConfig

__all__ = ("MemoryBackend", "MemoryBackendConfig")

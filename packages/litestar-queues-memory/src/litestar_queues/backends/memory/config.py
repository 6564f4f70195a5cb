"""Configuration of the in-process memory backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from litestar_queues.backends.memory.backend import MemoryBackend

__all__ = ("MemoryBackendConfig",)


class MemoryBackendConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Configuration of :class:`~litestar_queues.backends.memory.MemoryBackend`.

    The memory backend needs no settings; the class exists so every backend is configured the same
    way: ``QueueConfig(queue_backend=MemoryBackendConfig())``.
    """

    def create_backend(self) -> MemoryBackend:
        """Build an unopened :class:`~litestar_queues.backends.memory.MemoryBackend` with this configuration."""
        from litestar_queues.backends.memory.backend import MemoryBackend  # noqa: PLC0415 - the backend imports this module

        return MemoryBackend(self)

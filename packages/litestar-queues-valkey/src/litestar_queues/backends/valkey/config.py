"""``ValkeyBackendConfig``: where the Valkey server is, or the valkey-py client the app already owns."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import ClassVar

from valkey.asyncio import ConnectionPool, Valkey, ValkeyCluster

from litestar_queues.backends.resp import RespBackendConfig
from litestar_queues.backends.valkey.backend import ValkeyBackend

__all__ = ("ValkeyBackendConfig",)


@dataclass
class ValkeyBackendConfig(RespBackendConfig):
    """Configuration of the Valkey backend (valkey-py's asyncio client).

    Give at most one of ``url``, ``client`` and ``connection_pool``; with none, ``valkey://localhost:6379/0``.
    ``redis://`` URLs work too. Every other setting is described on ``RespBackendConfig``.

    Example:
        .. code-block:: python

            QueueConfig(queue_backend=ValkeyBackendConfig(url="valkey://localhost:6379/0", key_prefix="myapp"))

    Attributes:
        client: A ``valkey.asyncio.Valkey`` (or ``ValkeyCluster``) the app already owns; used as is and never closed.
        connection_pool: A ``valkey.asyncio.ConnectionPool`` the app already owns; never closed.
    """

    default_url: ClassVar[str] = "valkey://localhost:6379/0"

    _: KW_ONLY
    client: Valkey | ValkeyCluster | None = None
    connection_pool: ConnectionPool | None = None

    def create_backend(self) -> ValkeyBackend:
        """Build the (unopened) backend this configuration describes."""
        return ValkeyBackend(self)

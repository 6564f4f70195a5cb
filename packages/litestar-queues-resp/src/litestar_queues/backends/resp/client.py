"""The small slice of an asyncio Redis-protocol client this package uses.

Both ``redis.asyncio.Redis`` (redis-py) and ``valkey.asyncio.Valkey`` (valkey-py) satisfy :class:`RespClient`
as they are; nothing here imports either library. What differs between them — the exception classes — is
described by a :class:`RespErrorTypes` that each wiring package supplies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = (
    "RespClient",
    "RespClusterClient",
    "RespConnection",
    "RespErrorTypes",
    "RespPipeline",
    "RespPubSub",
    "RespServerClient",
)


class RespPipeline(Protocol):
    """A non-transactional pipeline: queue commands, send them in one round trip."""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        """Queue a command (``EVALSHA``: a cluster pipeline refuses its ``evalsha()`` method, not the command)."""
        ...

    def script_load(self, script: Any) -> Any:
        """Queue a ``SCRIPT LOAD`` (not on a cluster pipeline)."""
        ...

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Send the queued commands; with ``raise_on_error=False`` errors are returned in place."""
        ...


class RespConnection(Protocol):
    """One connection of a client's pool, used directly (made by the pool's ``make_connection()``)."""

    socket_timeout: float | None
    """Seconds a write, and a read, may take (``None``: no limit)."""

    async def send_packed_command(self, command: bytes, check_health: bool = True) -> None:
        """Send an encoded command, connecting first if need be."""
        ...

    async def read_response(self) -> Any:
        """Read one reply. An error reply is raised; any other failure (a timeout, a lost connection, a cancelled
        read) disconnects first, as ``send_packed_command`` does."""
        ...

    async def disconnect(self, nowait: bool = False) -> None:
        """Close the connection (the next command connects again)."""
        ...


class RespPubSub(Protocol):
    """A pub/sub connection."""

    async def subscribe(self, *args: Any, **kwargs: Any) -> Any:
        """Send ``SUBSCRIBE``; the confirmation arrives as a message."""
        ...

    def unsubscribe(self, *args: Any) -> Awaitable[Any]:
        """Send ``UNSUBSCRIBE``; the confirmation arrives as a message."""
        ...

    def ping(self, message: Any = None) -> Awaitable[Any]:
        """Send ``PING``; the answer arrives as a ``pong`` message."""
        ...

    async def get_message(self, ignore_subscribe_messages: bool = False, timeout: float | None = 0.0) -> Any:
        """Return the next message (a dict with ``type``, ``channel`` and ``data``), or ``None`` after ``timeout``."""
        ...

    async def aclose(self) -> None:
        """Close the connection."""
        ...


class RespClient(Protocol):
    """The client methods the backend calls."""

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        """Run a cached script (awaitable)."""
        ...

    def script_load(self, script: Any) -> Any:
        """Load a script into the server's cache and return its SHA1 (awaitable)."""
        ...

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        """Return a :class:`RespPipeline`."""
        ...

    def scan_iter(self, match: Any = None, count: int | None = None, _type: str | None = None) -> AsyncIterator[Any]:
        """The keys matching ``match``, by ``SCAN`` (a cluster client scans every primary)."""
        ...

    def delete(self, *names: Any) -> Any:
        """Delete keys (awaitable)."""
        ...

    async def aclose(self) -> None:
        """Close the client (and its pool when it owns it)."""
        ...


class RespServerClient(RespClient, Protocol):
    """A client of one server (``redis.asyncio.Redis``, ``valkey.asyncio.Valkey``): it has pub/sub."""

    def pubsub(self, **kwargs: Any) -> Any:
        """Return a :class:`RespPubSub` on a connection of its own."""
        ...


class RespClusterClient(RespClient, Protocol):
    """A cluster client: its nodes (``redis.asyncio.RedisCluster``, ``valkey.asyncio.ValkeyCluster``)."""

    def get_nodes(self) -> list[Any]:
        """Every known node, primaries and replicas."""
        ...


@dataclass(frozen=True)
class RespErrorTypes:
    """The client library's exception classes the backend must tell apart.

    Attributes:
        connection: Errors meaning "the server is unreachable right now" (connection refused or dropped,
            timeouts, a server still loading its data, a read-only replica after a failover, a cluster that is down).
        no_script: The error raised by ``EVALSHA`` for a script the server does not have (``NOSCRIPT``).
    """

    connection: tuple[type[BaseException], ...]
    no_script: type[BaseException]

    def is_connection_error(self, exc: BaseException) -> bool:
        """Return whether ``exc`` means the server could not be reached."""
        if isinstance(exc, (*self.connection, OSError, asyncio.TimeoutError)):
            return True
        # a cluster client that reached no node raises its own exception from the last connection failure
        cause = exc.__cause__
        return cause is not None and isinstance(cause, (*self.connection, OSError, asyncio.TimeoutError))

    def is_pool_timeout(self, exc: BaseException) -> bool:
        """Return whether ``exc`` means no pooled connection came free in time (a busy client, not an outage).

        Both libraries' blocking pools raise their ``ConnectionError`` from the ``asyncio.TimeoutError`` of the wait.
        """
        return isinstance(exc, self.connection) and isinstance(exc.__cause__, asyncio.TimeoutError)

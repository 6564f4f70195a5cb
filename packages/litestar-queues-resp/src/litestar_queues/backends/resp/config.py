"""Settings shared by the Redis and Valkey backend configurations."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from litestar_queues.config import redact_url
from litestar_queues.errors import ConfigurationError

__all__ = ("RespBackendConfig", "describe_server", "hash_tagged", "redact_url")

ConfigT = TypeVar("ConfigT", bound="RespBackendConfig")

_WEEK = 7 * 24 * 3600.0


@dataclass
class RespBackendConfig:
    """Connection and storage settings common to ``RedisBackendConfig`` and ``ValkeyBackendConfig``.

    Attributes:
        url: Server URL, e.g. ``redis://localhost:6379/0``. Ignored when a client or pool is given.
        key_prefix: Namespace of every key and channel, so several apps or test runs share one server safely.
            In cluster mode each queue's keys get a hash tag of their own (``"myapp{q:<queue>}"``) and the keys
            that span queues the prefix's (``"{myapp}"``), so queues spread over the shards (``slots.py``). A prefix
            with a tag of its own (or one created before per-queue slots) keeps every key in one slot.
        cluster: Talk to a Redis Cluster / Valkey cluster through the library's cluster client; ``url`` names
            any one node (the client discovers the others). A ``+cluster`` URL scheme (``redis+cluster://``,
            ``valkey+cluster://``, ``rediss+cluster://``, ``valkeys+cluster://``) sets it too. An adopted
            ``client`` that is a cluster client switches it on by itself.
        finished_retention: Seconds a terminal record (and its result) is kept after it finished, measured on
            the queue clock; finishing work deletes up to two older records per finish. ``None`` keeps them
            until ``prune`` removes them.
        enqueue_chunk_size: Records per ``EVALSHA`` of a bulk enqueue (the chunks go in one pipeline).
        socket_timeout: Read timeout of a client the backend creates from ``url``.
        socket_connect_timeout: Connect timeout of a client the backend creates from ``url``.
        max_connections: Most connections of the pool the backend creates from ``url`` (the wakeup listener's
            included); beside the pool, the backend keeps one connection of its own for lone calls (a single
            enqueue, an idle worker's claim). A call made while all are busy waits for one: a busy service is not
            an outage. In cluster mode: per node, and a call made while all are busy fails at once (the cluster
            client has no waiting pool); the wakeup listener has a connection of its own.
        pool_timeout: Seconds such a call waits for a free connection before it fails with
            ``RespConnectionError`` ("no free connection"); ``None`` waits as long as it takes. Not used in cluster
            mode.
        client_options: Extra keyword arguments for the connection pool created from ``url`` (and its connections).
        client: A client the app already owns (its library's asyncio client); used as is and never closed.
            Its own timeouts and retry settings apply, not ``socket_*``.
        connection_pool: A connection pool the app already owns; never closed by the backend.
    """

    default_url: ClassVar[str] = "redis://localhost:6379/0"

    url: str | None = None
    _: KW_ONLY
    key_prefix: str = "lq"
    cluster: bool = False
    finished_retention: float | timedelta | None = _WEEK
    enqueue_chunk_size: int = 500
    socket_timeout: float | None = 10.0
    socket_connect_timeout: float | None = 5.0
    max_connections: int = 100
    pool_timeout: float | None = 10.0
    client_options: dict[str, Any] = field(default_factory=dict)
    client: Any = None
    connection_pool: Any = None

    def __post_init__(self) -> None:
        given = [name for name in ("url", "client", "connection_pool") if getattr(self, name) is not None]
        if len(given) > 1:
            raise ConfigurationError(f"give only one of url, client and connection_pool (got {', '.join(given)})")
        if not self.key_prefix:
            raise ConfigurationError("key_prefix must not be empty: it namespaces every key the backend writes")
        if self.enqueue_chunk_size < 1:
            raise ConfigurationError(f"enqueue_chunk_size must be at least 1, got {self.enqueue_chunk_size}")
        if self.max_connections < 2:
            raise ConfigurationError(
                f"max_connections must be at least 2 (one is the wakeup listener's), got {self.max_connections}"
            )
        if self.pool_timeout is not None and self.pool_timeout <= 0:
            raise ConfigurationError(
                f"pool_timeout must be positive (or None to wait as long as it takes), got {self.pool_timeout}"
            )
        if self.retention_seconds is not None and self.retention_seconds < 0:
            raise ConfigurationError(f"finished_retention must not be negative, got {self.finished_retention}")
        if self.url is not None:
            _check_url(self.url)
            if urlsplit(self.url).scheme.lower().endswith(_CLUSTER_SUFFIX):
                self.cluster = True
        if self.cluster and self.connection_pool is not None:
            raise ConfigurationError(
                "cluster mode takes a url or a cluster client, not a connection_pool (a pool talks to one node)"
            )

    @classmethod
    def from_url(cls: type[ConfigT], url: str) -> ConfigT:
        """Build a configuration from a server URL with every other setting at its default.

        Args:
            url: e.g. ``redis://localhost:6379/0`` or ``valkey://localhost:6379/0``.

        Returns:
            The configuration.
        """
        return cls(url=url)

    @property
    def retention_seconds(self) -> float | None:
        """``finished_retention`` in seconds (``None`` when disabled)."""
        retention = self.finished_retention
        return retention.total_seconds() if isinstance(retention, timedelta) else retention

    @property
    def effective_url(self) -> str:
        """``url`` (without a ``+cluster`` in its scheme), or the default URL when none was given."""
        url = self.url or self.default_url
        scheme, separator, rest = url.partition("://")
        return scheme.lower().removesuffix(_CLUSTER_SUFFIX) + separator + rest


_CLUSTER_SUFFIX = "+cluster"


_SCHEMES = frozenset(
    {"redis", "rediss", "valkey", "valkeys", "unix"}
    | {scheme + _CLUSTER_SUFFIX for scheme in ("redis", "rediss", "valkey", "valkeys")}
)


def _check_url(url: str) -> None:
    """Raise ``ConfigurationError`` naming the (redacted) URL if it is not a server URL the client can use."""
    if not isinstance(url, str):
        raise ConfigurationError(f"url must be a string, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme.lower() not in _SCHEMES:
        raise ConfigurationError(
            f"{redact_url(url)!r} is not a server URL: expected redis://host:port/db (or rediss://, valkey://, "
            "valkeys://, unix://; redis+cluster://host:port and the like for a cluster)"
        )
    try:
        parts.port  # noqa: B018 - reading it validates it
    except ValueError:
        raise ConfigurationError(f"{redact_url(url)!r}: the port must be a number from 0 to 65535") from None
    database = parts.path.lstrip("/")
    if parts.scheme.lower() != "unix" and database and not database.isdigit():
        raise ConfigurationError(f"{redact_url(url)!r}: the database after the host must be a number, e.g. /0")
    if parts.scheme.lower().endswith(_CLUSTER_SUFFIX) and database not in ("", "0"):
        raise ConfigurationError(f"{redact_url(url)!r}: a cluster has only database 0")


def hash_tagged(prefix: str) -> str:
    """Return ``prefix`` with a cluster hash tag: as it is when it has one (``{...}`` around at least one
    character, the first ``{`` counting), else wrapped in braces."""
    start = prefix.find("{")
    end = prefix.find("}", start + 1) if start >= 0 else -1
    return prefix if end > start + 1 else "{" + prefix + "}"


def describe_server(url: str, client: object | None) -> str:
    """Say where the server is, for log lines: the adopted client's (or pool's) address, else the redacted URL."""
    pool = getattr(client, "connection_pool", client)
    options = getattr(pool, "connection_kwargs", None)
    if isinstance(options, dict):
        if "path" in options:
            return f"unix://{options['path']}"
        return f"{options.get('host', '?')}:{options.get('port', '?')}/{options.get('db', 0)}"
    return redact_url(url)

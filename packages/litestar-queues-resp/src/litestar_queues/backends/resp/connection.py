"""Connection failures: one exception type for callers, one log line per outage for operators."""

from __future__ import annotations

import logging
import time

from litestar_queues.errors import BackendUnavailableError

__all__ = ("ConnectionMonitor", "RespConnectionError")

logger = logging.getLogger("litestar_queues.backends.resp")


class RespConnectionError(BackendUnavailableError):
    """The Redis or Valkey server cannot be reached right now.

    Raised promptly instead of waiting or retrying inside the backend; the next call reconnects. Nothing was
    lost: a call that failed this way either did not reach the server or its atomic script ran completely.
    """


class ConnectionMonitor:
    """Tracks whether a server is reachable and logs each outage once, when it starts and when it ends."""

    __slots__ = ("_down_since", "_label")

    def __init__(self, label: str) -> None:
        """Create a monitor.

        Args:
            label: What is being monitored, for log lines (e.g. ``"redis backend at localhost:6379"``).
        """
        self._label = label
        self._down_since: float | None = None

    @property
    def is_down(self) -> bool:
        """Whether the last attempt failed."""
        return self._down_since is not None

    def failed(self, exc: BaseException) -> RespConnectionError:
        """Record a failed attempt and return the error to raise (chain it with ``from exc``)."""
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.warning(
                "%s: connection lost (%s: %s); calls raise RespConnectionError until it is back",
                self._label,
                type(exc).__name__,
                exc,
            )
        return RespConnectionError(f"{self._label} is unreachable: {type(exc).__name__}: {exc}")

    def busy(self) -> RespConnectionError:
        """Return the error to raise when no pooled connection came free in time: a busy client, not an outage."""
        return RespConnectionError(
            f"{self._label}: no free connection within pool_timeout (all max_connections are busy; "
            "raise max_connections or pool_timeout)"
        )

    def succeeded(self) -> None:
        """Record a successful attempt (logs the end of an outage)."""
        if self._down_since is not None:
            logger.warning("%s: connection restored after %.1f s", self._label, time.monotonic() - self._down_since)
            self._down_since = None

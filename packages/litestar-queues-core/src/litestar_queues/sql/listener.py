"""One dedicated PostgreSQL connection that LISTENs for wakeups, and comes back when it is lost.

Notifications are hints; polling stays the truth. The backend tells the listener how to open its connection
(an asyncpg ``Connection`` or a psycopg ``AsyncConnection``, whatever library the backend reaches them through)
and how to let go of it: one like the pool's, or, behind a transaction-mode pooler such as PgBouncer, one to the
server's own address (see :mod:`litestar_queues.sql.pooler`). When the connection dies — server restart,
``pg_terminate_backend``, network — the listener notices (termination callback or a failing health check),
reconnects at once and then with backoff, re-LISTENs and wakes every waiter, since notifications sent while it was
away are lost. The driver objects are used through their methods only: nothing here imports a driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

__all__ = ("ListenDriver", "NotificationListener", "close_connection")

logger = logging.getLogger("litestar_queues.sql")

ListenDriver = Literal["asyncpg", "psycopg"]
"""The PostgreSQL drivers whose connections the listener can LISTEN on."""

_HEALTH_CHECK_SECONDS = 5.0
_MAX_BACKOFF_SECONDS = 2.0


class NotificationListener:
    """Keeps ``LISTEN`` subscriptions on ``channels`` alive and dispatches each payload to its handler."""

    __slots__ = (
        "_channels",
        "_close",
        "_connect",
        "_connected",
        "_driver",
        "_health_seconds",
        "_on_connected",
        "_task",
        "server_pid",
    )

    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        driver: ListenDriver,
        channels: Mapping[str, Callable[[str], None]],
        *,
        on_connected: Callable[[], None],
        close: Callable[[Any], Awaitable[None]] | None = None,
        health_check_seconds: float = _HEALTH_CHECK_SECONDS,
    ) -> None:
        """Prepare a listener (call :meth:`start`).

        Args:
            connect: Opens a new driver connection (asyncpg ``Connection`` or psycopg ``AsyncConnection``) for the
                listener alone; it is never shared while the listener holds it.
            driver: ``"asyncpg"`` or ``"psycopg"``.
            channels: Channel name to the handler of its payloads.
            on_connected: Called after every successful (re)subscription.
            close: Lets go of a connection ``connect`` opened, lost or not (default: close it, then drop the socket
                if it does not close promptly).
            health_check_seconds: How often an idle connection is probed.
        """
        self._connect = connect
        self._close = close or close_connection
        self._driver = driver
        self._channels = dict(channels)
        self._on_connected = on_connected
        self._health_seconds = health_check_seconds
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self.server_pid: int | None = None
        """Backend pid of the listening connection while it is up (diagnostics and tests)."""

    @property
    def started(self) -> bool:
        """Whether :meth:`start` was called (and :meth:`stop` not since)."""
        return self._task is not None

    @property
    def connected(self) -> bool:
        """Whether the subscriptions are currently in place."""
        return self._connected.is_set()

    def start(self) -> None:
        """Start listening in the background (``wait_connected`` waits for the subscription; polling covers a
        failure)."""
        self._task = asyncio.create_task(self._run(), name="litestar-queues-listener")

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_connected(self, timeout: float) -> bool:
        """Wait until subscribed (after a reconnect); ``False`` on timeout."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        backoff = 0.0
        down_since: float | None = None  # an outage is logged when it starts and when it ends, not per try
        loop = asyncio.get_running_loop()
        while True:
            _raise_if_cancelling()
            try:
                connection = await self._connect()
            except Exception as error:
                if down_since is None:
                    down_since = loop.time()
                    logger.warning(
                        "LISTEN connection failed (%s); retrying with backoff (workers poll meanwhile)", error
                    )
                else:
                    logger.debug("LISTEN connection failed again (%s); retrying in %.2fs", error, max(backoff, 0.05))
                await asyncio.sleep(max(backoff, 0.05))
                backoff = min(max(backoff * 2, 0.1), _MAX_BACKOFF_SECONDS)
                continue
            if down_since is not None:
                logger.warning("LISTEN connection restored after %.1f s", loop.time() - down_since)
                down_since = None
            try:
                if self._driver == "asyncpg":
                    await self._listen_asyncpg(connection)
                else:
                    await self._listen_psycopg(connection)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning("LISTEN connection lost (%s); reconnecting", error)
            finally:
                self._connected.clear()
                self.server_pid = None
                await self._close(connection)
            backoff = 0.0  # reconnect at once after losing a working connection

    def _subscribed(self, pid: int) -> None:
        self.server_pid = pid
        self._connected.set()
        self._on_connected()

    async def _listen_asyncpg(self, connection: Any) -> None:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        for channel, handler in self._channels.items():
            await connection.add_listener(channel, _asyncpg_callback(handler))
        self._subscribed(connection.get_server_pid())
        while True:
            _raise_if_cancelling()
            waiter = asyncio.ensure_future(lost.wait())
            try:
                done, _ = await asyncio.wait({waiter}, timeout=self._health_seconds)  # never swallows a cancel
            finally:
                waiter.cancel()
            if done:
                return
            await asyncio.wait_for(connection.fetchval("SELECT 1"), self._health_seconds)

    async def _listen_psycopg(self, connection: Any) -> None:
        await connection.set_autocommit(True)
        for channel in self._channels:
            await connection.execute(f'LISTEN "{channel}"')  # channel names are validated identifiers
        self._subscribed(connection.info.backend_pid)
        handlers = self._channels
        while True:
            _raise_if_cancelling()
            async for notification in connection.notifies(timeout=self._health_seconds):
                handler = handlers.get(notification.channel)
                if handler is not None:
                    handler(notification.payload)
            await asyncio.wait_for(connection.execute("SELECT 1"), self._health_seconds)


def _raise_if_cancelling() -> None:
    """Honour a cancellation that ``asyncio.wait_for`` swallowed (Python 3.11 drops one racing its timeout).

    Without this, a listener whose cancellation was lost would loop forever and hang the event loop's shutdown.
    """
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)  # Python 3.11+
    if cancelling is not None and cancelling():
        raise asyncio.CancelledError


async def close_connection(connection: Any) -> None:
    """Close politely for a moment, then drop the socket: a dead server must not hold up ``stop()``."""
    try:
        await asyncio.wait_for(asyncio.shield(connection.close()), _HEALTH_CHECK_SECONDS)
    except Exception:
        terminate = getattr(connection, "terminate", None)  # asyncpg
        if terminate is not None:
            terminate()
        else:
            with contextlib.suppress(Exception):
                connection.pgconn.finish()  # psycopg


def _asyncpg_callback(handler: Callable[[str], None]) -> Callable[[Any, int, str, str], None]:
    def callback(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
        handler(payload)

    return callback

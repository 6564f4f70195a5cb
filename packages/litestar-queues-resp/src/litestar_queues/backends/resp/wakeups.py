"""Push hints over pub/sub, so an idle worker claims new work about a millisecond after it was enqueued.

Scripts publish ``<prefix>:wake:<queue>`` when a record of that queue becomes pending and
``<prefix>:done:<id>`` when a record becomes terminal. One pub/sub connection per backend, opened on the first
wait, carries every subscription of the process. Hints only: a lost message costs at most one poll interval,
because callers claim (or read) after every wait, and a dropped connection wakes every waiter and is
re-established in the background with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from litestar_queues.backends.resp.client import RespErrorTypes, RespPubSub
from litestar_queues.backends.resp.codec import text
from litestar_queues.backends.resp.connection import ConnectionMonitor

__all__ = ("Wakeups",)

logger = logging.getLogger("litestar_queues.backends.resp")

_HEARTBEAT_SECONDS = 15.0
"""Idle time after which the listener pings; a second silent interval means the connection is dead."""
_BACKOFF_FIRST_SECONDS = 0.05
_BACKOFF_MAX_SECONDS = 5.0


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Wakeups:
    """Waiters for work and finish hints, fed by one background pub/sub listener."""

    __slots__ = (
        "_closed",
        "_confirm_waiters",
        "_confirmed",
        "_connect",
        "_control",
        "_done_prefix",
        "_errors",
        "_finish_waiters",
        "_interest",
        "_live",
        "_monitor",
        "_task",
        "_wake_prefix",
        "_work_hints",
        "_work_waiters",
    )

    def __init__(
        self, connect: Callable[[], RespPubSub], errors: RespErrorTypes, monitor: ConnectionMonitor, prefix: str
    ) -> None:
        """Create the waiters; nothing connects until the first wait.

        Args:
            connect: Returns a new pub/sub connection (called again after each lost one), e.g. ``client.pubsub``.
            errors: The client library's exception classes.
            monitor: Where the listener reports outages.
            prefix: The key prefix the scripts publish under.
        """
        self._connect = connect
        self._errors = errors
        self._monitor = monitor
        self._wake_prefix = f"{prefix}:wake:"
        self._done_prefix = f"{prefix}:done:"
        self._control = f"{prefix}:listener"
        self._interest: dict[str, int] = {}
        self._confirmed: set[str] = set()
        self._confirm_waiters: set[asyncio.Future[None]] = set()
        self._work_waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._work_hints: set[str] = set()
        self._finish_waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._live: RespPubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # -- waiting -----------------------------------------------------------------------------------

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        """Return when one of ``queues`` was woken since the last wait, or after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        channels = [self._wake_prefix + queue for queue in queues]
        fresh = [channel for channel in channels if channel not in self._interest]
        if fresh:
            for channel in fresh:
                self._interest[channel] = 1  # work subscriptions stay for the backend's lifetime
            await self._subscribe(fresh)
            await self._until_confirmed(channels, deadline)
        if self._work_hints.intersection(queues):
            self._work_hints.difference_update(queues)
            return
        waiter: asyncio.Future[None] = loop.create_future()
        for queue in queues:
            self._work_waiters.setdefault(queue, set()).add(waiter)
        try:
            await self._wait(waiter, deadline)
        finally:
            for queue in queues:
                self._work_waiters[queue].discard(waiter)
        # one turn of the loop: the listener dispatches the rest of a burst of enqueues first, so the caller's claim
        # takes them in one batch instead of one record per claim
        await asyncio.sleep(0)

    async def wait_for_finish(self, record_id: str, timeout: float, is_finished: Callable[[], Awaitable[bool]]) -> None:
        """Return when ``record_id`` may have become terminal, or after ``timeout`` seconds.

        Args:
            record_id: The record to watch.
            timeout: Longest wait in seconds.
            is_finished: Reads the record's status; called once the subscription is in place, which closes the
                race with a finish that happened just before it.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        channel = self._done_prefix + record_id
        users = self._interest.get(channel, 0)
        self._interest[channel] = users + 1
        waiter: asyncio.Future[None] = loop.create_future()
        self._finish_waiters.setdefault(record_id, set()).add(waiter)
        try:
            if users == 0:
                await self._subscribe([channel])
            await self._until_confirmed([channel], deadline)
            if waiter.done() or await is_finished():
                return
            await self._wait(waiter, deadline)
        finally:
            waiters = self._finish_waiters[record_id]
            waiters.discard(waiter)
            if not waiters:
                del self._finish_waiters[record_id]
            await self._release(channel)

    async def close(self) -> None:
        """Stop the listener and release every waiter."""
        self._closed = True
        self._wake_everyone()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @staticmethod
    async def _wait(waiter: asyncio.Future[None], deadline: float) -> None:
        loop = asyncio.get_running_loop()
        delay = deadline - loop.time()
        if delay <= 0:
            return
        timer = loop.call_later(delay, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()

    async def _until_confirmed(self, channels: Iterable[str], deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed and any(channel not in self._confirmed for channel in channels):
            if deadline - loop.time() <= 0:
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._confirm_waiters.add(waiter)
            try:
                await self._wait(waiter, deadline)
            finally:
                self._confirm_waiters.discard(waiter)

    # -- subscriptions -----------------------------------------------------------------------------

    async def _subscribe(self, channels: list[str]) -> None:
        if self._closed:
            return
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._listen(), name="litestar-queues-resp-wakeups")
        elif self._live is not None:
            # not yet live: the listener subscribes to everything in _interest once connected
            with contextlib.suppress(Exception):
                await self._live.subscribe(*channels)

    async def _release(self, channel: str) -> None:
        users = self._interest.get(channel, 0) - 1
        if users > 0:
            self._interest[channel] = users
            return
        self._interest.pop(channel, None)
        self._confirmed.discard(channel)
        if self._live is not None:
            with contextlib.suppress(Exception):
                await self._live.unsubscribe(channel)

    # -- the listener ------------------------------------------------------------------------------

    async def _listen(self) -> None:
        delay = _BACKOFF_FIRST_SECONDS
        while not self._closed:
            pubsub = self._connect()
            try:
                await self._subscribe_all(pubsub)
                self._live = pubsub
                silent = False
                while True:
                    message = await pubsub.get_message(timeout=_HEARTBEAT_SECONDS)
                    if message is None:
                        if silent:
                            raise ConnectionError("the pub/sub connection stopped answering pings")
                        silent = True
                        await pubsub.ping()
                        continue
                    silent = False
                    delay = _BACKOFF_FIRST_SECONDS
                    self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure means: reconnect after a pause
                self._live = None
                self._confirmed.clear()
                self._wake_everyone()
                if self._errors.is_connection_error(exc) or isinstance(exc, ConnectionError):
                    self._monitor.failed(exc)
                else:
                    logger.exception("wakeup listener failed; reconnecting (polling continues meanwhile)")
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX_SECONDS)
            finally:
                self._live = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _subscribe_all(self, pubsub: RespPubSub) -> None:
        done: set[str] = set()
        todo = [self._control, *self._interest]
        while todo:
            await pubsub.subscribe(*todo)
            done.update(todo)
            todo = [channel for channel in self._interest if channel not in done]

    def _dispatch(self, message: dict[str, Any]) -> None:
        channel_value = message.get("channel")
        if channel_value is None:
            return
        kind = text(message["type"])
        channel = text(channel_value)
        if kind == "message":
            if channel.startswith(self._wake_prefix):
                self._on_work(channel[len(self._wake_prefix) :])
            elif channel.startswith(self._done_prefix):
                for waiter in self._finish_waiters.get(channel[len(self._done_prefix) :], ()):
                    _resolve(waiter)
        elif kind == "subscribe":
            self._monitor.succeeded()
            self._confirmed.add(channel)
            if channel.startswith(self._wake_prefix):
                # anything published before this subscription existed was missed: let the next wait poll
                self._on_work(channel[len(self._wake_prefix) :])
            self._release_confirm_waiters()
        elif kind == "unsubscribe" and channel not in self._interest:
            self._confirmed.discard(channel)

    def _on_work(self, queue: str) -> None:
        woken = False
        for waiter in self._work_waiters.get(queue, ()):
            if not waiter.done():
                waiter.set_result(None)
                woken = True
        if not woken:
            self._work_hints.add(queue)

    def _wake_everyone(self) -> None:
        for waiters in (*self._work_waiters.values(), *self._finish_waiters.values()):
            for waiter in waiters:
                _resolve(waiter)
        self._release_confirm_waiters()

    def _release_confirm_waiters(self) -> None:
        for waiter in self._confirm_waiters:
            _resolve(waiter)
        self._confirm_waiters.clear()

"""Keep N worker processes running (``litestar queues run --processes N``).

A child that dies while the supervisor is not stopping is restarted, after a delay that grows while it keeps
dying quickly. SIGTERM and SIGINT are forwarded to every child as SIGTERM: the first makes them drain, the
second makes them stop at once. Children run in their own session so a Ctrl+C in the terminal reaches them
only through the supervisor (once per press, not twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence

__all__ = ("supervise",)

logger = logging.getLogger("litestar_queues.litestar.cli")

_FIRST_RESTART_DELAY = 0.5
_MAX_RESTART_DELAY = 30.0
_HEALTHY_AFTER = 30.0
"""A child that ran this many seconds before dying is restarted at once, not after a growing delay."""


def supervise(commands: Sequence[Sequence[str]]) -> int:
    """Run one child process per command until signalled; return the exit code for the supervisor.

    Returns:
        0 when every child exited cleanly after the stop signal, else 1.
    """
    return asyncio.run(_Supervisor(commands).run())


class _Supervisor:
    __slots__ = ("_children", "_commands", "_signals", "_stopping")

    def __init__(self, commands: Sequence[Sequence[str]]) -> None:
        self._commands = [list(command) for command in commands]
        self._children: dict[int, asyncio.subprocess.Process] = {}
        self._stopping = asyncio.Event()
        self._signals = 0

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)
        logger.info("supervising %d worker processes", len(self._commands))
        codes = await asyncio.gather(*(self._keep_running(index) for index in range(len(self._commands))))
        return 0 if all(code == 0 for code in codes) else 1

    def _on_signal(self, signum: signal.Signals) -> None:
        self._signals += 1
        self._stopping.set()
        action = "draining" if self._signals == 1 else "stopping now"
        logger.info("%s: %s %d worker processes", signum.name, action, len(self._children))
        for child in self._children.values():
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)

    async def _keep_running(self, index: int) -> int:
        loop = asyncio.get_running_loop()
        delay = _FIRST_RESTART_DELAY
        while True:
            child = await asyncio.create_subprocess_exec(*self._commands[index], start_new_session=True)
            self._children[index] = child
            if self._stopping.is_set():  # a signal arrived while it was starting
                child.send_signal(signal.SIGTERM)
            started = loop.time()
            code = await child.wait()
            del self._children[index]
            if self._stopping.is_set():
                return code
            if loop.time() - started >= _HEALTHY_AFTER:
                delay = _FIRST_RESTART_DELAY
            logger.warning(
                "worker process %d (pid %d) exited with %d; restarting in %gs", index + 1, child.pid, code, delay
            )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            if self._stopping.is_set():
                return 0
            delay = min(delay * 2, _MAX_RESTART_DELAY)

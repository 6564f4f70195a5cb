"""The running side of a ``QueueConfig``: channels, the opened service, schedules and a worker, started and stopped
in the right order. The plugin's lifespan and ``litestar queues run`` both use it.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType

from litestar.channels import ChannelsPlugin

from litestar_queues import QueueConfig, QueueService, Worker, WorkerConfig
from litestar_queues.litestar.channels import channels_plugin_for

__all__ = ("QueueRuntime", "event_channels")


class QueueRuntime:
    """Start everything a ``QueueConfig`` needs in one process, and stop it in reverse order.

    On entry: start ``channels`` (when this process owns it), open the ``QueueService`` (which connects the
    backend and imports ``task_modules``), initialise schedules, start the worker. On exit: stop the worker
    (running attempts get ``WorkerConfig.drain_timeout`` to finish, the rest go back to pending), close the
    service, stop the channels — so events published while draining still go out.
    """

    __slots__ = (
        "_channels",
        "_config",
        "_exit_stack",
        "_initialize_schedules",
        "_start_worker",
        "_state",
        "_wait_for_backend",
        "_worker_config",
        "service",
        "worker",
    )

    def __init__(
        self,
        config: QueueConfig,
        *,
        start_worker: bool,
        worker_config: WorkerConfig | None = None,
        channels: ChannelsPlugin | None = None,
        initialize_schedules: bool | None = None,
        state: object = None,
        wait_for_backend: bool = False,
    ) -> None:
        """Describe the runtime (nothing starts before ``async with``).

        Args:
            config: The queue configuration.
            start_worker: Start a worker in this process.
            worker_config: Worker settings; ``config.worker`` when ``None``.
            channels: A ``ChannelsPlugin`` this process must start and stop itself (one no app lifespan runs):
                see :func:`event_channels`.
            initialize_schedules: Initialise schedules on entry; ``config.initialize_schedules`` when ``None``.
            state: The application's state, which running tasks see as ``TaskExecutionContext.state``.
            wait_for_backend: If the backend is unreachable on entry, wait for it with backoff (logging it) instead
                of failing (``QueueService.open``).
        """
        self._config = config
        self._start_worker = start_worker
        self._worker_config = worker_config or config.worker
        self._channels = channels
        self._initialize_schedules = (
            config.initialize_schedules if initialize_schedules is None else initialize_schedules
        )
        self._state = state
        self._wait_for_backend = wait_for_backend
        self._exit_stack = AsyncExitStack()
        self.service: QueueService | None = None
        """The opened service, while the runtime is entered."""
        self.worker: Worker | None = None
        """The running worker, while the runtime is entered with ``start_worker=True``."""

    async def __aenter__(self) -> QueueRuntime:
        try:
            await self._start()
        except BaseException:
            await self._exit_stack.aclose()
            raise
        return self

    async def _start(self) -> None:
        stack = self._exit_stack
        if self._channels is not None:
            await stack.enter_async_context(self._channels)
        service = QueueService(self._config, state=self._state)
        await service.open(wait_for_backend=self._wait_for_backend)
        stack.push_async_callback(service.close)
        stack.callback(setattr, self, "service", None)
        self.service = service
        if self._initialize_schedules:
            await service.initialize_schedules()
        if self._start_worker:
            worker = Worker(service, self._worker_config)
            await worker.start()
            self.worker = worker
            stack.push_async_callback(self._stop_worker, worker)

    async def _stop_worker(self, worker: Worker) -> None:
        try:
            await worker.stop()
        finally:
            self.worker = None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._exit_stack.aclose()


def event_channels(config: QueueConfig) -> ChannelsPlugin | None:
    """The ``ChannelsPlugin`` that events of ``config`` go through (``None`` when they do not use Channels).

    A process that runs no app lifespan (a CLI command, a standalone worker) must start it itself, so the events
    it publishes (a cancellation, a task's progress) reach subscribers of a Channels backend shared between
    processes.
    """
    target = config.event_config.channels_backend
    return None if target is None else channels_plugin_for(target)

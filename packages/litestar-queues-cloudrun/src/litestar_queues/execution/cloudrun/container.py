"""``litestar-queues-cloudrun-worker``: the entry point of a Cloud Run job container; it runs one attempt.

It loads the application's ``QueueConfig`` (``LITESTAR_APP`` or the first argument, ``module:attribute`` naming a
``QueueConfig``, a Litestar app with a ``QueuePlugin``, or a factory of either), opens the queue service (which
imports the task modules and connects the backend and, when configured, the Channels backend), takes over the
record named by the execution's environment under its fence, runs the task while renewing the lease, publishes
its events through the configured sinks, writes the outcome and exits with an :class:`ExitCode`.

Signals: SIGTERM (or SIGINT) stops the task without committing anything (the queue's reconcile ends the record
under its retry policy once the execution is over); SIGTSTP and SIGCONT, which Cloud Run sends around a
maintenance migration, are logged, and the lease is lengthened in between so the migration cannot lose it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import importlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from litestar_queues.config import QueueConfig
from litestar_queues.errors import ConfigurationError
from litestar_queues.execution.cloudrun.resources import execution_id
from litestar_queues.execution.cloudrun.target import (
    ENV_EXECUTION_BACKEND,
    ENV_FENCE_TOKEN,
    ENV_QUEUE,
    ENV_RECORD_ID,
    CloudRunTarget,
    owner_execution,
)
from litestar_queues.records import LeaseState, TaskRecord, TaskStatus
from litestar_queues.runner import Interrupt
from litestar_queues.service import QueueService

__all__ = ("AttemptIds", "ExitCode", "load_queue_config", "main", "run_attempt")

logger = logging.getLogger("litestar_queues.cloudrun")

MAINTENANCE_LEASE = 600.0
"""Seconds the lease is lengthened to between SIGTSTP and SIGCONT (a maintenance migration freezes the process)."""


class ExitCode(enum.IntEnum):
    """The container's exit status. Cloud Run only tells zero from non-zero; the record decides what happened."""

    COMPLETED = 0
    """The task completed; its result is stored."""
    RETRYING = 10
    """The task failed and will be retried: the record is pending again, after its backoff."""
    FAILED = 11
    """The task failed for good (no retries left, or a non-retryable error)."""
    CANCELLED = 12
    """Cancellation was requested while it ran; the record is cancelled."""
    NOT_OWNER = 20
    """The fence did not match: another process holds the record or it already ended. Nothing was changed."""
    NOT_FOUND = 21
    """No record has the id in the environment (pruned or deleted). Nothing was changed."""
    UNAVAILABLE = 75
    """The queue backend could not be reached or failed while the outcome was written; reconcile ends the record."""
    CONFIGURATION_ERROR = 78
    """The app, its queue config, a task module or the environment is wrong. Nothing was changed."""
    TERMINATED = 143
    """SIGTERM (a cancel, the platform's timeout): stopped without committing; reconcile ends the record."""


_EXIT_CODES = {
    TaskStatus.COMPLETED: ExitCode.COMPLETED,
    TaskStatus.PENDING: ExitCode.RETRYING,
    TaskStatus.FAILED: ExitCode.FAILED,
    TaskStatus.CANCELLED: ExitCode.CANCELLED,
}


@dataclass(frozen=True)
class AttemptIds:
    """What the execution's environment says about the attempt it runs (ids only)."""

    record_id: str
    token: int
    queue: str
    execution_backend: str
    job: str
    """``CLOUD_RUN_JOB``: the job's id."""
    execution: str
    """``CLOUD_RUN_EXECUTION``: the execution's id."""
    attempt: int
    """``CLOUD_RUN_TASK_ATTEMPT``: 0, unless the job retries by itself (it should not)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AttemptIds:
        """Read the ids set by the dispatching worker and by Cloud Run.

        Raises:
            ConfigurationError: one is missing or malformed.
        """
        names = (
            ENV_RECORD_ID,
            ENV_FENCE_TOKEN,
            ENV_QUEUE,
            ENV_EXECUTION_BACKEND,
            "CLOUD_RUN_JOB",
            "CLOUD_RUN_EXECUTION",
        )
        missing = [name for name in names if not env.get(name)]
        if missing:
            raise ConfigurationError(
                f"missing environment variable(s) {', '.join(missing)}: this entry point runs inside a Cloud Run "
                "job execution started by a litestar-queues worker"
            )
        try:
            token = int(env[ENV_FENCE_TOKEN])
            attempt = int(env.get("CLOUD_RUN_TASK_ATTEMPT") or 0)
        except ValueError as exc:
            raise ConfigurationError(f"malformed {ENV_FENCE_TOKEN} or CLOUD_RUN_TASK_ATTEMPT: {exc}") from None
        return cls(
            record_id=env[ENV_RECORD_ID],
            token=token,
            queue=env[ENV_QUEUE],
            execution_backend=env[ENV_EXECUTION_BACKEND],
            job=env["CLOUD_RUN_JOB"],
            execution=env["CLOUD_RUN_EXECUTION"],
            attempt=attempt,
        )

    def dispatched(self, record: TaskRecord) -> bool:
        """Whether ``record`` still waits for this execution: running under the dispatching worker's fence (it has
        not stored this execution's name yet) or handed to this very execution, and not taken over since."""
        if record.status is not TaskStatus.RUNNING or record.execution_backend != self.execution_backend:
            return False
        if record.token == self.token:
            return True
        handed = owner_execution(record.owner)
        return (
            record.token == self.token + 1
            and handed is not None
            and handed == record.owner
            and execution_id(handed) == self.execution
        )


def load_queue_config(path: str) -> QueueConfig:
    """Load the ``QueueConfig`` that ``module:attribute`` names (attribute ``app`` when omitted).

    The attribute may be a ``QueueConfig``, a Litestar app with a ``QueuePlugin``, or a callable returning either.

    Raises:
        ConfigurationError: it cannot be imported or holds no queue config.
    """
    module_name, _, attribute = path.partition(":")
    if not module_name:
        raise ConfigurationError(f"{path!r} is not 'module:attribute'")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigurationError(f"cannot import {module_name!r} (from {path!r}): {exc}") from exc
    try:
        value = getattr(module, attribute or "app")
    except AttributeError:
        raise ConfigurationError(f"{module_name!r} has no attribute {attribute or 'app'!r}") from None
    config = _queue_config_of(value)
    if config is None and callable(value) and not hasattr(value, "plugins"):
        config = _queue_config_of(value())  # an app factory
    if config is None:
        raise ConfigurationError(f"{path!r} is neither a QueueConfig nor a Litestar app with a QueuePlugin")
    return config


def _queue_config_of(value: Any) -> QueueConfig | None:
    if isinstance(value, QueueConfig):
        return value
    for plugin in getattr(value, "plugins", None) or ():
        config = getattr(plugin, "config", None)
        if isinstance(config, QueueConfig):
            return config
    return None


@contextlib.asynccontextmanager
async def _opened(config: QueueConfig) -> AsyncIterator[QueueService]:
    """The opened service, with the Channels backend started when events go through one."""
    if config.event_config.channels_backend is None:
        async with QueueService(config) as service:
            yield service
        return
    try:
        from litestar_queues.litestar.runtime import QueueRuntime, event_channels  # noqa: PLC0415 - only if used
    except ImportError as exc:
        raise ConfigurationError(
            "QueueEventConfig(channels_backend=...) needs the Litestar integration in the image: pip install "
            "litestar-queues"
        ) from exc
    runtime = QueueRuntime(config, start_worker=False, channels=event_channels(config), initialize_schedules=False)
    async with runtime:
        assert runtime.service is not None
        yield runtime.service


class _Attempt:
    """One attempt running in this process: its lease renewals, its signals, and how it is interrupted."""

    def __init__(self, service: QueueService, record: TaskRecord) -> None:
        self.service = service
        self.record = record
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lq-cloudrun")
        """Runs a synchronous task: not the loop's default executor, which ``asyncio.run`` waits for at exit."""
        self.interrupt = Interrupt()
        self.terminated = False
        self.maintenance = False
        self.renew_now = asyncio.Event()
        """Set by SIGTSTP and SIGCONT: renew the lease at once (longer, or normal again)."""
        self.task: asyncio.Task[TaskRecord | None] | None = None

    async def run(self) -> TaskRecord | None:
        loop = asyncio.get_running_loop()
        runner = self.service.runner(self.record.owner)
        runner.executor = self.executor
        self.task = loop.create_task(runner.run(self.record, self.interrupt))
        heartbeat = loop.create_task(self._heartbeat())
        handlers = {
            signal.SIGTERM: self._terminate,
            signal.SIGINT: self._terminate,
            signal.SIGTSTP: self._pause,
            signal.SIGCONT: self._resume,
        }
        for signum, handler in handlers.items():
            loop.add_signal_handler(signum, handler, signum)
        try:
            return await self.task
        finally:
            for signum in handlers:
                loop.remove_signal_handler(signum)
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            self.executor.shutdown(wait=False, cancel_futures=True)

    def _stop(self, reason: str) -> None:
        if self.task is not None and self.interrupt.reason is None and not self.interrupt.finishing:
            self.interrupt.reason = reason
            self.task.cancel()

    def _terminate(self, signum: signal.Signals) -> None:
        logger.warning("%s: stopping task %s without committing it", signum.name, self.record.id)
        self.terminated = True
        self._stop("lost")  # "lost": end the attempt and write nothing

    def _pause(self, signum: signal.Signals) -> None:
        logger.warning("%s: maintenance migration ahead; lengthening the lease of task %s", signum.name, self.record.id)
        self.maintenance = True
        self.renew_now.set()

    def _resume(self, signum: signal.Signals) -> None:
        logger.warning("%s: resumed after maintenance; renewing the lease of task %s", signum.name, self.record.id)
        self.maintenance = False
        self.renew_now.set()

    async def _heartbeat(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.renew_now.wait(), self.service.config.worker.heartbeat_interval)
            self.renew_now.clear()
            await self._renew()

    async def _renew(self) -> None:
        worker = self.service.config.worker
        seconds = max(MAINTENANCE_LEASE, worker.stale_threshold) if self.maintenance else worker.stale_threshold
        try:
            states = await self.service.backend.renew(
                [self.record.lease], now=self.service.clock.now(), lease_seconds=seconds
            )
        except Exception as exc:  # a blip (a migration cuts connections); the next renewal tries again
            logger.warning("renewing the lease of task %s failed: %s", self.record.id, exc)
            return
        state = states.get(self.record.id)
        if self.interrupt.finishing:
            return  # its outcome is being written: a renewal racing it may see the lease gone
        if state is LeaseState.CANCEL_REQUESTED:
            self._stop("cancel")
        elif state is LeaseState.LOST:
            logger.warning("task %s: lease lost (cancelled or recovered elsewhere); stopping", self.record.id)
            self._stop("lost")


async def run_attempt(config: QueueConfig, ids: AttemptIds) -> ExitCode:
    """Take over the record ``ids`` names, run it, write its outcome, and say how it went."""
    try:
        async with _opened(config) as service:
            return await _take_over_and_run(service, ids)
    except ConfigurationError as exc:
        logger.error("configuration error: %s", exc)
        return ExitCode.CONFIGURATION_ERROR
    except Exception:
        logger.exception("the queue backend failed; the record is left to reconcile")
        return ExitCode.UNAVAILABLE


async def _take_over_and_run(service: QueueService, ids: AttemptIds) -> ExitCode:
    target = service.targets.get(ids.execution_backend)
    if not isinstance(target, CloudRunTarget):
        raise ConfigurationError(f"execution backend {ids.execution_backend!r} is not a Cloud Run target here")
    record = await service.backend.get(ids.record_id)
    if record is None:
        logger.error("no record %s (pruned or deleted); nothing to run", ids.record_id)
        return ExitCode.NOT_FOUND
    name = target.config.execution_name(ids.job, ids.execution)
    if ids.attempt > 0:
        logger.warning(
            "%s is attempt %d: the job retries by itself; deploy it with --max-retries 0 (the queue owns retries)",
            name,
            ids.attempt,
        )
    claimed = None
    if ids.dispatched(record):
        claimed = await service.backend.transfer(
            record.lease,
            owner=f"{name}#{ids.attempt}",
            now=service.clock.now(),
            lease_seconds=service.config.worker.stale_threshold,
        )
    if claimed is None:
        logger.warning(
            "task %s (%s) is %s, owner %s, token %d (this execution was given token %d): not ours; nothing changed",
            record.id,
            record.task_name,
            record.status.value,
            record.owner,
            record.token,
            ids.token,
        )
        return ExitCode.NOT_OWNER
    logger.info("task %s (%s) attempt %d running in %s", claimed.id, claimed.task_name, claimed.attempts, name)
    attempt = _Attempt(service, claimed)
    final = await attempt.run()
    if final is None:
        return ExitCode.TERMINATED if attempt.terminated else ExitCode.NOT_OWNER
    return _EXIT_CODES[final.status]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the attempt this Cloud Run execution was started for; return an :class:`ExitCode`."""
    parser = argparse.ArgumentParser(
        prog="litestar-queues-cloudrun-worker",
        description="Run the queued task this Cloud Run job execution was started for, then exit.",
    )
    parser.add_argument(
        "app",
        nargs="?",
        default=os.environ.get("LITESTAR_APP"),
        help="module:attribute of the QueueConfig or Litestar app (default: $LITESTAR_APP)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("litestar_queues").setLevel(args.log_level.upper())
    try:
        if not args.app:
            raise ConfigurationError("name the app as an argument (module:attribute) or in LITESTAR_APP")
        ids = AttemptIds.from_env(os.environ)
        config = load_queue_config(args.app)
    except ConfigurationError as exc:
        logger.error("configuration error: %s", exc)
        return ExitCode.CONFIGURATION_ERROR
    code = asyncio.run(run_attempt(config, ids))
    if code is ExitCode.TERMINATED:  # a synchronous task may still be running in its thread: do not wait for it
        logging.shutdown()
        sys.stderr.flush()
        os._exit(code)
    return code

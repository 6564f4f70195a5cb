"""Execution targets: where the attempt of a claimed record runs.

Workers claim records the same way whatever their target; the target named by the record's ``execution_backend``
only decides where the claimed attempt runs. ``local`` runs it in the worker, ``immediate`` in the process that
enqueues it. A remote target (Cloud Run, in ``litestar-queues-cloudrun``) starts it on another machine and hands
the record's lease to that process (``QueueBackend.transfer``), which ends the attempt under its own fence; the
target's ``reconcile`` ends the attempts that stopped there without writing an outcome, and its ``cancel`` stops
one whose cancellation is requested.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from litestar_queues.errors import ConfigurationError
from litestar_queues.records import Outcome, TaskError, TaskRecord, TaskStatus

if TYPE_CHECKING:
    from litestar_queues.runner import AttemptRunner, Interrupt
    from litestar_queues.service import QueueService
    from litestar_queues.task import TaskOptions

__all__ = (
    "ExecutionConfig",
    "ExecutionTarget",
    "ImmediateTarget",
    "LocalTarget",
    "check_task_targets",
    "create_targets",
    "reconcile_targets",
    "target_for",
)

logger = logging.getLogger("litestar_queues.worker")


class ExecutionTarget(ABC):
    """Where the attempts of records whose ``execution_backend`` is :attr:`name` run.

    A service opens every configured target (``open``) and closes it (``close``); a worker calls ``dispatch`` for
    each record it claims and, when any target is ``remote``, ``reconcile`` every ``WorkerConfig.reconcile_interval``
    (one worker at a time); ``QueueService.cancel`` calls ``cancel`` for a running record of the target.
    """

    name: str = "local"
    remote: ClassVar[bool] = False
    """Attempts run outside the worker that claimed them: the target reconciles its own stale attempts (worker stale
    recovery leaves them alone) and the queue backend must be reachable from elsewhere."""

    async def open(self, service: QueueService) -> None:  # noqa: B027 - optional hook
        """Check that the target can serve ``service`` (its backend, its tasks) and keep what it needs.

        Raises:
            ConfigurationError: it cannot; the message says why.
        """

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what ``open`` or later calls acquired."""

    def check(self, task_name: str, options: TaskOptions) -> None:  # noqa: B027 - optional hook
        """Refuse a task it cannot run with these options (at service start for registered tasks, and at enqueue
        for per-call options).

        Raises:
            ConfigurationError: the message names the task and the option.
        """

    @abstractmethod
    async def dispatch(self, record: TaskRecord, runner: AttemptRunner, interrupt: Interrupt | None) -> None:
        """Run the attempt of the claimed ``record``, or start it elsewhere and hand its lease over.

        On return the worker forgets the record: either its outcome is written, or another owner holds its lease.
        ``interrupt`` says why the asyncio task running this call was cancelled (see ``Interrupt.reason``).
        """

    async def reconcile(self) -> int:
        """End attempts started elsewhere that stopped without writing an outcome; return how many changed."""
        return 0

    async def cancel(self, record: TaskRecord) -> TaskRecord | None:
        """Stop the running ``record`` whose cancellation was just requested; return it if this changed it.

        Attempts in a worker notice the request at their next lease renewal, so the default does nothing.
        """
        del record
        return None


class LocalTarget(ExecutionTarget):
    """Runs attempts in the worker that claimed them (the default)."""

    name = "local"

    async def dispatch(self, record: TaskRecord, runner: AttemptRunner, interrupt: Interrupt | None) -> None:
        """Run the attempt here."""
        await runner.run(record, interrupt)


class ImmediateTarget(LocalTarget):
    """Runs attempts inline, in the process that enqueues them, before ``enqueue`` returns (tests, scripts).

    A worker that claims such a record (a retry whose enqueuer died) runs it like ``local``.
    """

    name = "immediate"


class _UnconfiguredTarget(ExecutionTarget):
    """Stands for a target this process does not configure: the claimed attempt fails at once, saying so."""

    async def dispatch(self, record: TaskRecord, runner: AttemptRunner, interrupt: Interrupt | None) -> None:
        error = TaskError(
            type="execution_backend_unavailable",
            message=f"execution backend {record.execution_backend!r} is not configured in this worker's QueueConfig",
        )
        await runner.end(record, Outcome(status=TaskStatus.FAILED, error=error))


_UNCONFIGURED = _UnconfiguredTarget()


@runtime_checkable
class ExecutionConfig(Protocol):
    """A typed execution target configuration: ``QueueConfig(execution_backend=CloudRunExecutionConfig(...))``."""

    @property
    def name(self) -> str:
        """The name tasks give as ``execution_backend``."""
        ...

    def create_target(self) -> ExecutionTarget:
        """Build the (unopened) target this configuration describes."""
        ...


def create_targets(configs: Iterable[ExecutionConfig]) -> dict[str, ExecutionTarget]:
    """The built-in targets and one for each of ``configs``, by name (unopened)."""
    targets: dict[str, ExecutionTarget] = {"local": LocalTarget(), "immediate": ImmediateTarget()}
    for config in configs:
        targets[config.name] = config.create_target()
    return targets


def target_for(targets: Mapping[str, ExecutionTarget], record: TaskRecord) -> ExecutionTarget:
    """The target that runs ``record``; one that fails it, saying why, when this process does not configure it."""
    return targets.get(record.execution_backend, _UNCONFIGURED)


def check_task_targets(
    targets: Mapping[str, ExecutionTarget], tasks: Iterable[tuple[str, TaskOptions]], default: str
) -> None:
    """Check every task names a configured target that accepts its options.

    Raises:
        ConfigurationError: the first task that does not.
    """
    for task_name, options in tasks:
        name = options.execution_backend or default
        target = targets.get(name)
        if target is None:
            known = ", ".join(sorted(targets))
            raise ConfigurationError(
                f"task {task_name!r} runs on execution backend {name!r}, which this QueueConfig does not configure "
                f"(configured: {known}); add its config to QueueConfig.execution_backends"
            )
        target.check(task_name, options)


async def reconcile_targets(service: QueueService, *, owner: str, ttl_seconds: float) -> int:
    """Reconcile every remote target of ``service`` that no other worker reconciles now; return records changed."""
    changed = 0
    for target in service.targets.values():
        if not target.remote:
            continue
        lock = f"reconcile:{target.name}"
        if await service.backend.acquire_lock(lock, owner=owner, ttl_seconds=ttl_seconds, now=service.clock.now()):
            changed += await target.reconcile()
    return changed

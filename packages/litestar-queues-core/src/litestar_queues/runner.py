"""Run one claimed attempt and end it under its fence: the single execution path of every target."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from concurrent.futures import Executor
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import msgspec

from litestar_queues.backend import QueueBackend
from litestar_queues.clock import Clock
from litestar_queues.context import TaskDependency, TaskExecutionContext
from litestar_queues.errors import NonRetryableError, SerializationError, TaskNotFoundError, TaskTimeoutError
from litestar_queues.events.envelope import QueueEventType
from litestar_queues.events.publisher import QueueEventPublisher
from litestar_queues.instrumentation import Instrumentation, stored_trace_id
from litestar_queues.progress import ProgressReporter
from litestar_queues.records import Outcome, TaskError, TaskRecord, TaskStatus
from litestar_queues.serialization import encode_result
from litestar_queues.task import CONTEXT_PARAMETER, JOB_ID_PARAMETER, Task, TaskRegistry

__all__ = ("MAX_BACKOFF_SECONDS", "AttemptRunner", "Interrupt", "describe_error", "failed_attempt", "retry_delay")

logger = logging.getLogger("litestar_queues.worker")

MAX_BACKOFF_SECONDS = 3600.0
_HOLD_FIRST_DELAY = 0.05
_HOLD_MAX_DELAY = 2.0
"""Backoff between tries of writing a held outcome: from 50 ms, doubling, at most 2 s (jittered)."""
TRACEBACK_LIMIT = 8000
_NOT_RETRYABLE = (NonRetryableError, SerializationError, TaskNotFoundError, msgspec.ValidationError)
_TERMINAL_EVENTS = {
    TaskStatus.COMPLETED: QueueEventType.COMPLETED,
    TaskStatus.FAILED: QueueEventType.FAILED,
    TaskStatus.CANCELLED: QueueEventType.CANCELLED,
    TaskStatus.PENDING: QueueEventType.RETRYING,
}
_LOG_LEVELS = {"failed": logging.ERROR, "handed_back": logging.INFO}


def describe_error(exc: BaseException) -> TaskError:
    """Keep an exception's type, message and a bounded traceback."""
    kind = type(exc)
    text = "".join(traceback.format_exception(kind, exc, exc.__traceback__))
    if len(text) > TRACEBACK_LIMIT:
        text = "...\n" + text[-TRACEBACK_LIMIT:]
    return TaskError(type=f"{kind.__module__}.{kind.__qualname__}", message=str(exc), traceback=text)


def retry_delay(base: float, attempt: int) -> float:
    """Exponential backoff with jitter: between half and all of ``base * 2 ** (attempt - 1)``, capped at an hour."""
    if base <= 0:
        return 0.0
    ceiling = min(MAX_BACKOFF_SECONDS, base * 2.0 ** min(attempt - 1, 32))
    return ceiling / 2 + random.random() * ceiling / 2


def failed_attempt(record: TaskRecord, error: TaskError, now: datetime, *, retryable: bool = True) -> Outcome:
    """How a failed attempt of ``record`` ends under its task's retry policy: a retry after backoff while retries
    remain and the error is retryable, else failed."""
    if not retryable or record.attempts > record.max_retries:
        return Outcome(status=TaskStatus.FAILED, error=error)
    due = now + timedelta(seconds=retry_delay(record.retry_delay, record.attempts))
    return Outcome(status=TaskStatus.PENDING, error=error, scheduled_at=due)


class Interrupt:
    """Why a running attempt is being interrupted (set before cancelling its asyncio task), and whether it is ending.

    A worker subclasses it to hear when the attempt's code is over (:meth:`finish`), and tells it how long the
    attempt's lease lasts (``lease_expires_at``, moved on by each renewal).
    """

    __slots__ = ("finishing", "holding", "lease_expires_at", "reason")

    def __init__(self, lease_expires_at: datetime | None = None) -> None:
        self.reason: str | None = None
        """``"cancel"`` (cancellation requested), ``"lost"`` (lease lost) or ``"shutdown"`` (hand back)."""
        self.finishing = False
        """The attempt is over and its outcome is being written: a lease renewal racing it may report it lost."""
        self.holding = False
        """Writing the outcome failed, and it is held and written again until the lease expires: keep renewing it."""
        self.lease_expires_at = lease_expires_at
        """Until when the attempt's lease is known to hold (the claim's, then each renewal's)."""

    def finish(self) -> None:
        """Mark the attempt as ending: its code is over and its outcome is about to be written."""
        self.finishing = True


class AttemptRunner:
    """Executes claimed records: decode, open dependencies, call, encode, finish under the fence, publish lifecycle
    events."""

    __slots__ = (
        "backend",
        "clock",
        "dependencies",
        "executor",
        "instrumentation",
        "progress",
        "publisher",
        "registry",
        "state",
        "worker_id",
    )

    def __init__(
        self,
        *,
        backend: QueueBackend,
        registry: TaskRegistry,
        publisher: QueueEventPublisher,
        clock: Clock,
        worker_id: str | None,
        executor: Executor | None = None,
        dependencies: Mapping[str, TaskDependency] | None = None,
        state: Any = None,
        instrumentation: Instrumentation | None = None,
        progress: ProgressReporter | None = None,
    ) -> None:
        self.backend = backend
        self.progress = progress
        self.registry = registry
        self.publisher = publisher
        self.clock = clock
        self.worker_id = worker_id
        self.executor = executor
        self.dependencies: Mapping[str, TaskDependency] = dependencies if dependencies is not None else {}
        """Dependencies every task may declare (``QueueConfig.dependencies``)."""
        self.state = state
        """The application's state, given to attempts' contexts."""
        self.instrumentation = instrumentation

    def run(self, record: TaskRecord, interrupt: Interrupt | None = None) -> Coroutine[Any, Any, TaskRecord | None]:
        """Run the claimed ``record`` once and end it; return the updated record, or ``None`` if the fence failed."""
        hooks = self.instrumentation
        if hooks is None:
            return self._run(record, interrupt)
        return hooks.attempt(record, partial(self._run, record, interrupt))

    async def _run(self, record: TaskRecord, interrupt: Interrupt | None) -> TaskRecord | None:
        started = time.perf_counter()
        context = TaskExecutionContext(record, self.publisher, self.worker_id, self.progress, self.state)
        token = context.bind()
        try:
            outcome = await self._attempt(record, context, interrupt)
        finally:
            context.unbind(token)
        if outcome is None:  # lease lost: someone else owns the record now; change nothing
            self._log(record, None, time.perf_counter() - started)
            return None
        if interrupt is not None:
            interrupt.finish()
        now = self.clock.now()
        hooks = self.instrumentation
        if hooks is None:
            final = await self._write(record, outcome, now, interrupt)
        else:
            final = await hooks.finish(record, outcome, partial(self._write, record, outcome, now, interrupt))
        self._log(final or record, None if final is None else outcome, time.perf_counter() - started)
        if final is not None:
            await self._publish(final, context, handed_back=outcome.refund_attempt)
        return final

    async def end(self, record: TaskRecord, outcome: Outcome) -> TaskRecord | None:
        """End the attempt of ``record`` with ``outcome`` without running it (a dispatch that failed, an attempt
        that stopped elsewhere): finish under the record's current fence, log, publish the lifecycle event.

        Returns the updated record, or ``None`` (changing nothing) if the fence failed.
        """
        write = partial(self.backend.finish, record.lease, outcome, now=self.clock.now())
        hooks = self.instrumentation
        final = await (write() if hooks is None else hooks.finish(record, outcome, write))
        if final is not None:
            self._log(final, outcome, None)
            await self._publish(final, None, handed_back=outcome.refund_attempt)
        return final

    async def _write(
        self, record: TaskRecord, outcome: Outcome, now: datetime, interrupt: Interrupt | None
    ) -> TaskRecord | None:
        """Write the outcome of an attempt run here under its fence; one the backend failed to take is held."""
        try:
            return await self.backend.finish(record.lease, outcome, now=now, claimed=record)
        except Exception as error:
            return await self._hold(record, outcome, now, interrupt, error)

    async def _hold(
        self, record: TaskRecord, outcome: Outcome, now: datetime, interrupt: Interrupt | None, error: Exception
    ) -> TaskRecord | None:
        """Write an outcome the backend failed to take again, with backoff, for as long as the lease may hold.

        The work is done, and running it again would cost a retry and do it twice: a backend that is briefly
        unreachable (a restart, a failover) gets until the lease expires (renewals move that on). Every try is
        fenced, so a late one changes nothing if the record was recovered meanwhile; a try that finds its fence
        gone checks whether an earlier try applied after all (its reply lost with the connection).

        Raises:
            Exception: the last error, once the lease expired: the record comes back through stale recovery.
        """
        holder = interrupt if interrupt is not None else Interrupt(record.lease_expires_at)
        holder.holding = True
        loop = asyncio.get_running_loop()
        expiry = holder.lease_expires_at
        until = loop.time() + (0.0 if expiry is None else (expiry - self.clock.now()).total_seconds())
        logger.warning(
            "task %s (%s): writing its outcome failed (%s: %s); holding it and trying again until its lease expires",
            record.id,
            record.task_name,
            type(error).__name__,
            error,
        )
        delay = _HOLD_FIRST_DELAY
        tries = 1
        while True:
            latest = holder.lease_expires_at
            if latest is not None and expiry is not None and latest > expiry:  # renewed meanwhile
                until += (latest - expiry).total_seconds()
                expiry = latest
            left = until - loop.time()
            if left <= 0:
                raise error
            await asyncio.sleep(min(left, delay * (0.5 + random.random() / 2)))
            delay = min(delay * 2, _HOLD_MAX_DELAY)
            tries += 1
            try:
                final = await self.backend.finish(record.lease, outcome, now=now, claimed=record)
                if final is None:
                    final = await self._written_before(record, outcome, now)
            except Exception as failure:
                error = failure
                continue
            holder.holding = False
            logger.info("task %s (%s): outcome written after %d tries", record.id, record.task_name, tries)
            return final

    async def _written_before(self, record: TaskRecord, outcome: Outcome, now: datetime) -> TaskRecord | None:
        """The record, if an earlier try of writing ``outcome`` applied (its answer lost); else ``None``.

        A finish keeps the token, and stamps ``finished_at = now`` (terminal) or the outcome's ``scheduled_at``
        and ``error`` (pending): a stale recovery would have left another error and moment.
        """
        stored = await self.backend.get(record.id)
        if stored is None or stored.token != record.token or stored.owner is not None:
            return None
        if stored.finished_at == now:
            return stored
        pending = stored.status is TaskStatus.PENDING
        return (
            stored if pending and (stored.scheduled_at, stored.error) == (outcome.scheduled_at, outcome.error) else None
        )

    async def _attempt(
        self, record: TaskRecord, context: TaskExecutionContext, interrupt: Interrupt | None
    ) -> Outcome | None:
        try:
            task = self.registry.get(record.task_name)
            if self.publisher.enabled:
                await self.publisher.publish_task_event(
                    record, QueueEventType.STARTED, worker_id=self.worker_id, sequence=context.next_sequence()
                )
            args, kwargs = task.decode_call(record.args, record.kwargs)
            if task.wants_job_id:
                kwargs[JOB_ID_PARAMETER] = record.id
            if task.wants_context:
                kwargs[CONTEXT_PARAMETER] = context
            factories = task.dependency_factories(self.dependencies)
            call: Awaitable[Any] = (
                self._with_dependencies(task, args, kwargs, factories, context)
                if factories
                else self._call(task, args, kwargs)
            )
            value = await (call if record.timeout is None else self._bounded(task, call, record.timeout))
            return Outcome(status=TaskStatus.COMPLETED, result=encode_result(task.name, value))
        except asyncio.CancelledError:
            reason = interrupt.reason if interrupt is not None else None
            if reason == "cancel":
                return Outcome(
                    status=TaskStatus.CANCELLED, error=TaskError(type="cancelled", message="cancelled while running")
                )
            if reason == "shutdown":
                return Outcome(
                    status=TaskStatus.PENDING, scheduled_at=self.clock.now(), refund_attempt=True, error=record.error
                )
            if reason == "lost":
                return None
            raise
        except Exception as exc:
            return self._failure(record, exc)

    def _call(self, task: Task[Any, Any], args: list[Any], kwargs: dict[str, Any]) -> Awaitable[Any]:
        if task.is_async:
            awaitable: Awaitable[Any] = task.fn(*args, **kwargs)
            return awaitable
        loop = asyncio.get_running_loop()
        call: Callable[[], Any] = lambda: task.fn(*args, **kwargs)  # noqa: E731
        return loop.run_in_executor(self.executor, contextvars.copy_context().run, call)

    async def _with_dependencies(
        self,
        task: Task[Any, Any],
        args: list[Any],
        kwargs: dict[str, Any],
        factories: tuple[tuple[str, TaskDependency], ...],
        context: TaskExecutionContext,
    ) -> Any:
        """Open the attempt's dependencies in order, call the task with their values, close them in reverse order
        (each exit sees the task's exception, if any); an error of any of them is the attempt's."""
        async with AsyncExitStack() as stack:
            for name, factory in factories:
                kwargs[name] = await stack.enter_async_context(factory(context))
            return await self._call(task, args, kwargs)

    @staticmethod
    async def _bounded(task: Task[Any, Any], awaitable: Awaitable[Any], timeout: float) -> Any:
        """Await the attempt (its dependencies included) within the task's timeout."""
        try:
            return await asyncio.wait_for(awaitable, timeout)
        except asyncio.TimeoutError:
            raise TaskTimeoutError(f"task {task.name!r} exceeded its timeout of {timeout:g}s") from None

    def _failure(self, record: TaskRecord, exc: Exception) -> Outcome:
        retryable = not isinstance(exc, _NOT_RETRYABLE)
        return failed_attempt(record, describe_error(exc), self.clock.now(), retryable=retryable)

    def _log(self, record: TaskRecord, outcome: Outcome | None, duration: float | None) -> None:
        """One line per attempt outcome, with its fields also as ``extra`` attributes of the log record (``task_id``,
        ``task_name``, ``queue``, ``attempt``, ``status``, ``duration``, ``trace_id``) for structured formatters.

        ``outcome`` is ``None`` when the attempt's lease was lost (nothing written); ``duration`` is ``None`` for an
        attempt ended without running here.
        """
        if outcome is None:
            level, status, detail = logging.WARNING, "lost", "lease lost; outcome discarded"
        else:
            status = "handed_back" if outcome.refund_attempt else record.status.value
            level, detail = _LOG_LEVELS.get(status, logging.INFO), ""
            if status == "completed" and record.metadata.get("quiet_success"):
                level = logging.DEBUG
            if status == "pending":
                status, detail = "retrying", f"retrying at {record.scheduled_at.isoformat()}"
            if outcome.error is not None and status != "handed_back":
                detail = f"{detail}: {outcome.error.message}" if detail else outcome.error.message
        if not logger.isEnabledFor(level):
            return
        hooks = self.instrumentation
        trace_id = stored_trace_id(record) if hooks is None else hooks.trace_id(record)
        fields = {
            "task_id": record.id,
            "task_name": record.task_name,
            "queue": record.queue,
            "attempt": record.attempts,
            "status": status,
            "duration": duration,
            "trace_id": trace_id,
        }
        took = "" if duration is None else f" in {duration:.3f}s"
        traced = "" if trace_id is None else f" trace_id={trace_id}"
        logger.log(
            level,
            "task %s (%s) attempt %d %s%s%s%s",
            record.id,
            record.task_name,
            record.attempts,
            status,
            took,
            f" ({detail})" if detail else "",
            traced,
            extra=fields,
        )

    async def _publish(self, final: TaskRecord, context: TaskExecutionContext | None, *, handed_back: bool) -> None:
        status = final.status
        if not self.publisher.enabled or handed_back:  # a shutdown hand-back is not a retry
            return
        event_type = _TERMINAL_EVENTS.get(status)
        if event_type is None:
            return
        error = final.error if status is not TaskStatus.COMPLETED else None
        try:
            await self.publisher.publish_task_event(
                final,
                event_type,
                worker_id=self.worker_id,
                sequence=context.next_sequence() if context is not None else None,
                level="error" if status is TaskStatus.FAILED else None,
                message=error.message if error else None,
                payload={"errorType": error.type} if error else None,
            )
        except Exception:  # the record is already final; a strict sink cannot undo that
            logger.exception("publishing %s for task %s failed after it finished", event_type, final.id)

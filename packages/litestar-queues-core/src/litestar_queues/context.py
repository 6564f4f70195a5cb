"""The execution context of a running attempt, reachable from task code through a context variable."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeAlias

from litestar_queues.events.envelope import QueueEventType
from litestar_queues.events.publisher import QueueEventPublisher
from litestar_queues.progress import progress_percent
from litestar_queues.records import TaskRecord

if TYPE_CHECKING:
    from litestar_queues.progress import ProgressReporter

__all__ = ("TaskDependency", "TaskExecutionContext", "current_task_context")

_current: ContextVar[TaskExecutionContext | None] = ContextVar("litestar_queues_task_context", default=None)


def current_task_context() -> TaskExecutionContext | None:
    """The context of the attempt running in this task/thread, or ``None`` outside a task."""
    return _current.get()


class TaskExecutionContext:
    """What a running task may know and do: its record, attempt, worker, the application's state, and the event
    helpers.

    Declare a ``_task_context`` parameter to receive it, or use the ``litestar_queues.events`` helpers.
    """

    __slots__ = ("_progress", "_sequence", "publisher", "record", "state", "worker_id")

    def __init__(
        self,
        record: TaskRecord,
        publisher: QueueEventPublisher,
        worker_id: str | None,
        progress: ProgressReporter | None = None,
        state: Any = None,
    ) -> None:
        self.record = record
        self.publisher = publisher
        self.worker_id = worker_id
        self._progress = progress
        self.state = state
        """The application's state (``app.state``) under the ``QueuePlugin`` and ``litestar queues run``; else
        whatever ``QueueService(state=...)`` was given (``None`` by default)."""
        self._sequence = 0

    @property
    def job_id(self) -> str:
        """The record id."""
        return self.record.id

    @property
    def attempt(self) -> int:
        """The attempt number, starting at 1."""
        return self.record.attempts

    def next_sequence(self) -> int:
        """The next event sequence number of this attempt."""
        self._sequence += 1
        return self._sequence

    def bind(self) -> object:
        """Make this the current context; returns a token for :meth:`unbind`."""
        return _current.set(self)

    @staticmethod
    def unbind(token: object) -> None:
        """Restore the previous context."""
        _current.reset(token)  # type: ignore[arg-type]

    async def publish_event(
        self,
        event_type: str = QueueEventType.EVENT,
        *,
        message: str | None = None,
        payload: dict[str, Any] | None = None,
        level: str | None = None,
        channels: Iterable[str] = (),
        event_key: str | None = None,
        actor: str | None = None,
        entity: str | None = None,
    ) -> None:
        """Publish a custom event about this task."""
        await self.publisher.publish_task_event(
            self.record,
            event_type,
            worker_id=self.worker_id,
            sequence=self.next_sequence(),
            channels=channels,
            message=message,
            payload=payload,
            level=level,
            event_key=event_key,
            actor=actor,
            entity=entity,
        )

    async def publish_log(
        self,
        message: str,
        *,
        level: str = "info",
        payload: dict[str, Any] | None = None,
        channels: Iterable[str] = (),
        event_key: str | None = None,
    ) -> None:
        """Publish a ``task.log`` event."""
        await self.publish_event(
            QueueEventType.LOG, message=message, payload=payload, level=level, channels=channels, event_key=event_key
        )

    async def publish_progress(
        self,
        current: float,
        total: float | None = None,
        *,
        message: str | None = None,
        payload: dict[str, Any] | None = None,
        channels: Iterable[str] = (),
        event_key: str | None = None,
    ) -> None:
        """Keep the progress on the record (``TaskRecord.progress``) and publish a ``task.progress`` event;
        ``progressPercent`` is derived when ``total`` is known.

        Raises:
            SerializationError: ``current`` or ``total`` is not a finite number.
        """
        reporter = self._progress
        progress = None if reporter is None else reporter.measure(self.record, current, total, message)
        percent = progress_percent(current, total) if progress is None else progress.percent
        # Where the backend stores both in one round trip, the progress goes in the history writer's batch, with its
        # event; elsewhere it is saved beside the event, at the same time.
        together = progress is not None and self.publisher.stores_progress
        event = self.publisher.publish_task_event(
            self.record,
            QueueEventType.PROGRESS,
            worker_id=self.worker_id,
            sequence=self.next_sequence(),
            channels=channels,
            message=message,
            payload=payload,
            event_key=event_key,
            progress_current=current,
            progress_total=total,
            progress_percent=percent,
            progress=(self.record.lease, progress) if together and progress is not None else None,
        )
        if reporter is None or progress is None or together:
            await event
        else:  # the record's progress and the event are written at the same time (saving never raises)
            await asyncio.gather(reporter.save(self.record, progress), event)


TaskDependency: TypeAlias = Callable[[TaskExecutionContext], AbstractAsyncContextManager[Any]]
"""What a task receives per attempt under a parameter name: called with the attempt's context, its async context
manager is entered after ``task.started`` and exited once the task returned or raised (seeing the exception),
before the attempt's outcome is written. An error from either counts as the task's own: it follows the task's
retry policy. Configured in ``QueueConfig(dependencies={name: ...})`` and ``@task(dependencies={name: ...})``."""

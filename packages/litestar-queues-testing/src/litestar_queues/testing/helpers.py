"""Helpers for testing application code that enqueues tasks."""

from __future__ import annotations

from typing import Any

from litestar_queues.config import WorkerConfig
from litestar_queues.records import TaskRecord, TaskStatus
from litestar_queues.service import QueueService
from litestar_queues.task import Task
from litestar_queues.worker import Worker

__all__ = ("assert_enqueued", "assert_not_enqueued", "enqueued", "run_until_empty")

_FAST = WorkerConfig(poll_interval=0.05, heartbeat_interval=0.1, stale_threshold=5.0, maintenance_interval=1.0)


async def run_until_empty(
    service: QueueService, *, timeout: float = 30.0, worker_config: WorkerConfig | None = None
) -> int:
    """Run a worker until no due work is left and nothing runs; return how many attempts finished.

    Work scheduled in the future (delays, backoff) is left pending.

    Raises:
        TimeoutError: work was still arriving after ``timeout`` seconds.
    """
    return await Worker(service, worker_config or _FAST).run_until_idle(timeout=timeout)


async def enqueued(
    service: QueueService, task: Task[Any, Any] | str, *, status: TaskStatus | None = None
) -> list[TaskRecord]:
    """Every record of ``task`` (oldest first), optionally of one status."""
    name = task if isinstance(task, str) else task.name
    records: list[TaskRecord] = []
    cursor: str | None = None
    while True:
        page = await service.list_tasks(task_name=name, status=status, limit=500, cursor=cursor)
        records.extend(page.records)
        if page.next_cursor is None:
            return records[::-1]
        cursor = page.next_cursor


async def assert_enqueued(service: QueueService, task: Task[Any, Any], *args: Any, **kwargs: Any) -> TaskRecord:
    """Assert a call of ``task`` was enqueued (with exactly these arguments, when any are given); return its record.

    Raises:
        AssertionError: no such record, listing what was enqueued instead.
    """
    records = await enqueued(service, task)
    if args or kwargs:
        expected = service.request(task, *args, **kwargs)
        matching = [r for r in records if r.args == expected.args and r.kwargs == expected.kwargs]
    else:
        matching = records
    if not matching:
        calls = [(r.args, r.kwargs, r.status.value) for r in records] or "nothing"
        wanted = f" with args={list(args)} kwargs={kwargs}" if args or kwargs else ""
        raise AssertionError(f"task {task.name!r} was not enqueued{wanted}; enqueued: {calls}")
    return matching[-1]


async def assert_not_enqueued(service: QueueService, task: Task[Any, Any]) -> None:
    """Assert no record of ``task`` exists.

    Raises:
        AssertionError: listing the records found.
    """
    records = await enqueued(service, task)
    if records:
        raise AssertionError(f"task {task.name!r} was enqueued {len(records)} time(s): {[r.id for r in records]}")

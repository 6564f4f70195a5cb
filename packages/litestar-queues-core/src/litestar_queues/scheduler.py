"""Schedules: one pending record per scheduled task, one run per slot however many schedulers run.

Everything about schedules lives here: the :class:`Scheduler` of a service initialises them, enqueues the next
slot when a worker starts a scheduled run (and skips a run beyond ``max_instances``), and lists them.

Each run of a schedule is a record whose id is derived from (task, definition, slot), so enqueueing the
same slot twice — from several workers or app processes — resolves to one record. Slots never depend on the
clock of the process computing them: cron slots are the expression's fire times, and interval slots are the
multiples of the interval since the Unix epoch. When a worker starts a scheduled run it enqueues the first slot
after ``max(now, slot)``, so after downtime a missed slot runs once, not once per missed slot.
"""

from __future__ import annotations

import hashlib
import logging
import random
import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec

from litestar_queues.errors import ConfigurationError
from litestar_queues.records import Outcome, RecordFilter, TaskError, TaskRecord, TaskStatus

if TYPE_CHECKING:
    from litestar_queues.service import QueueService
    from litestar_queues.task import Schedule, Task

__all__ = ("ScheduleInfo", "Scheduler", "next_slot", "schedule_metadata", "schedule_of", "slot_record_id")

logger = logging.getLogger("litestar_queues.scheduler")

SCHEDULE_METADATA_KEY = "schedule"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_RUNNING_PAGE = 100
"""Running records of a task read to count the older runs of a schedule (``max_instances``)."""


class ScheduleInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A registered schedule and its next run."""

    task_name: str
    cron: str | None
    interval: float | None
    timezone: str
    next_run_at: datetime | None
    pending_record_id: str | None


def next_slot(schedule: Schedule, after: datetime) -> datetime:
    """The first slot strictly after ``after``.

    Cron: the expression's next fire time. Interval: the next multiple of the interval since the Unix epoch, so that
    every process computes the same slots whatever its clock says (to the microsecond).
    """
    expression = schedule.cron_expression
    if expression is not None:
        return expression.next_after(after, ZoneInfo(schedule.timezone))
    step = max(1, round((schedule.interval or 0.0) * 1_000_000))
    elapsed = (after - _EPOCH) // timedelta(microseconds=1)
    return _EPOCH + timedelta(microseconds=(elapsed // step + 1) * step)


def first_slot(schedule: Schedule, now: datetime) -> datetime:
    """The first slot of a schedule initialised at ``now``: an interval schedule's waits ``initial_delay`` first."""
    if schedule.interval and schedule.initial_delay > 0:
        return next_slot(schedule, now + timedelta(seconds=schedule.initial_delay) - timedelta(microseconds=1))
    return next_slot(schedule, now)


def slot_record_id(task_name: str, schedule: Schedule, slot: datetime) -> str:
    """A deterministic, time-ordered id (UUIDv7 layout) for one slot of one schedule definition."""
    digest = hashlib.sha256(f"{task_name}\x00{schedule.signature}\x00{slot.isoformat()}".encode()).digest()
    ms = int(slot.timestamp() * 1000) & 0xFFFFFFFFFFFF
    tail = int.from_bytes(digest[:10], "big")
    value = ms << 80 | 0x7 << 76 | (tail >> 68 & 0xFFF) << 64 | 0b10 << 62 | (tail & 0x3FFFFFFFFFFFFFFF)
    return str(uuid.UUID(int=value))


def schedule_metadata(schedule: Schedule, slot: datetime) -> dict[str, Any]:
    """The metadata a scheduled record carries: its definition and nominal slot."""
    return {
        "signature": schedule.signature,
        "slot": slot.isoformat(),
        "cron": schedule.cron,
        "interval": schedule.interval,
        "timezone": schedule.timezone,
        "max_instances": schedule.max_instances,
    }


def jittered(schedule: Schedule, slot: datetime) -> datetime:
    """The due time of a slot: the slot plus up to ``jitter`` random seconds."""
    if schedule.jitter <= 0:
        return slot
    return slot + timedelta(seconds=random.random() * schedule.jitter)


def schedule_of(record: TaskRecord) -> dict[str, Any] | None:
    """The schedule metadata of a record made by a schedule, else ``None``."""
    value = record.metadata.get(SCHEDULE_METADATA_KEY)
    return value if isinstance(value, dict) else None


def matches_definition(record: TaskRecord, task: Task[Any, Any]) -> bool:
    """Whether ``record`` was made by the task's current schedule definition."""
    meta = schedule_of(record)
    return task.schedule is not None and meta is not None and meta.get("signature") == task.schedule.signature


class Scheduler:
    """The schedules of one service's registry, kept as chains of records in its backend."""

    __slots__ = ("service",)

    def __init__(self, service: QueueService) -> None:
        self.service = service

    async def initialize(self) -> list[TaskRecord]:
        """Make sure every scheduled task has a pending record of its current definition; return them.

        Pending records of an older definition are cancelled. Several pending records of the current one (two
        processes that started on either side of a slot) are distinct slots of one chain, and all stay.
        """
        service = self.service
        now = service.clock.now()
        pending: list[TaskRecord] = []
        for task in service.registry:
            if task.schedule is None:
                continue
            current: list[TaskRecord] = []
            for record in await self._records(task.name, TaskStatus.PENDING):
                if matches_definition(record, task):
                    current.append(record)
                else:
                    await service.backend.cancel(record.id, now=now)
                    logger.info("schedule of %s changed: cancelled pending run %s", task.name, record.id)
            if current:
                pending.append(min(current, key=lambda record: record.scheduled_at))
            else:
                pending.append(await self.enqueue_slot(task, first_slot(task.schedule, now), now=now))
        return pending

    async def enqueue_slot(self, task: Task[Any, Any], slot: datetime, *, now: datetime) -> TaskRecord:
        """Enqueue one slot of a task's schedule; enqueueing the same slot again returns the same record.

        Raises:
            ConfigurationError: the task has no schedule.
        """
        from litestar_queues.service import EnqueueRequest  # noqa: PLC0415 - the service imports this module

        schedule = task.schedule
        if schedule is None:
            raise ConfigurationError(f"task {task.name!r} has no schedule")
        metadata = {**task.options.metadata, SCHEDULE_METADATA_KEY: schedule_metadata(schedule, slot)}
        options = msgspec.structs.replace(
            task.options, scheduled_at=jittered(schedule, slot), delay=None, metadata=metadata
        )
        request = EnqueueRequest(task_name=task.name, args=[], kwargs={}, options=options)
        record = self.service._record(request, now, record_id=slot_record_id(task.name, schedule, slot))
        (outcome,) = await self.service.backend.enqueue([record])
        return outcome.record

    async def start_run(self, record: TaskRecord) -> bool:
        """A worker claimed the scheduled ``record``: enqueue the next slot, and return whether to run it.

        A run beyond the schedule's ``max_instances`` (that many older runs still running) is skipped: it ends
        ``cancelled`` with error type ``max_instances``, and ``False`` is returned.
        """
        meta = schedule_of(record) or {}
        await self._enqueue_next(record, meta)
        limit = int(meta.get("max_instances", 1))
        page = await self.service.backend.query(
            RecordFilter(status=TaskStatus.RUNNING, task_name=record.task_name), limit=_RUNNING_PAGE
        )
        position = (record.scheduled_at, record.id)
        older = sum(1 for other in page.records if (other.scheduled_at, other.id) < position)
        if older < limit:
            return True
        error = TaskError(type="max_instances", message=f"skipped: {limit} run(s) of this schedule already running")
        await self.service.backend.finish(
            record.lease, Outcome(status=TaskStatus.CANCELLED, error=error), now=self.service.clock.now()
        )
        logger.warning("task %s (%s) %s", record.id, record.task_name, error.message)
        return False

    async def _enqueue_next(self, record: TaskRecord, meta: dict[str, Any]) -> None:
        registry = self.service.registry
        if "slot" not in meta or record.task_name not in registry:
            return
        task = registry.get(record.task_name)
        if task.schedule is None or not matches_definition(record, task):
            return  # an old definition's run: initialize owns the new one
        now = self.service.clock.now()
        await self.enqueue_slot(task, next_slot(task.schedule, max(now, datetime.fromisoformat(meta["slot"]))), now=now)

    async def schedules(self) -> list[ScheduleInfo]:
        """Every registered schedule with its next run."""
        infos = []
        for task in self.service.registry:
            if task.schedule is None:
                continue
            pending = [r for r in await self._records(task.name, TaskStatus.PENDING) if matches_definition(r, task)]
            record = min(pending, key=lambda r: r.scheduled_at, default=None)
            infos.append(
                ScheduleInfo(
                    task_name=task.name,
                    cron=task.schedule.cron,
                    interval=task.schedule.interval,
                    timezone=task.schedule.timezone,
                    next_run_at=record.scheduled_at if record else next_slot(task.schedule, self.service.clock.now()),
                    pending_record_id=record.id if record else None,
                )
            )
        return infos

    async def _records(self, task_name: str, status: TaskStatus) -> list[TaskRecord]:
        page = await self.service.backend.query(RecordFilter(status=status, task_name=task_name), limit=100)
        return [record for record in page.records if schedule_of(record) is not None]

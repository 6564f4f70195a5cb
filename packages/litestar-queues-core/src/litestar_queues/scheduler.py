"""Schedules: one pending record per scheduled task, one run per slot however many schedulers run.

Each run of a schedule is a record whose id is derived from (task, definition, slot), so enqueueing the
same slot twice — from several workers or app processes — resolves to one record. When a worker starts
a scheduled run it enqueues the next slot; the next slot is computed from ``max(now, slot)``, so after
downtime a missed slot runs once, not once per missed slot.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from litestar_queues.records import TaskRecord
from litestar_queues.task import Schedule, Task

__all__ = ("ScheduleInfo", "next_slot", "schedule_metadata", "slot_record_id")

SCHEDULE_METADATA_KEY = "schedule"


class ScheduleInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A registered schedule and its next run."""

    task_name: str
    cron: str | None
    interval: float | None
    timezone: str
    next_run_at: datetime | None
    pending_record_id: str | None


def next_slot(schedule: Schedule, after: datetime, *, previous: datetime | None = None) -> datetime:
    """The first slot strictly after ``after``.

    Cron: the expression's next fire time. Interval: ``previous + interval`` when that is still ahead
    (keeping the cadence), else ``after + interval``.
    """
    expression = schedule.cron_expression
    if expression is not None:
        return expression.next_after(after, ZoneInfo(schedule.timezone))
    step = timedelta(seconds=schedule.interval or 0.0)
    if previous is not None and previous + step > after:
        return previous + step
    return after + step


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

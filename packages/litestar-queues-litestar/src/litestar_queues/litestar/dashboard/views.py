"""How the dashboard shows things: the template engine, its filters, and the data of each page.

The pages are Jinja2 templates rendered by a Litestar ``JinjaTemplateEngine`` of the dashboard's own (the app's
``template_config``, if any, stays the app's), with autoescaping on: every value from a record is text.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import msgspec
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from litestar.plugins.jinja import JinjaTemplateEngine

from litestar_queues import QueueService, QueueStatistics, ScheduleInfo, TaskRecord, TaskStatus, WorkerInfo
from litestar_queues.service import CANCELLABLE, RETRYABLE
from litestar_queues.throughput import finished_per_minute

__all__ = (
    "JobFilter",
    "Overview",
    "QueueRow",
    "WorkerRow",
    "create_engine",
    "load_overview",
    "pretty_json",
)

RUNNING_SHOWN = 200
"""Most running records the overview reads to show what each worker runs."""


def age(seconds: float | None) -> str:
    """``4s``, ``3m 20s``, ``2h 5m``, ``3d 4h`` (``-`` for ``None``)."""
    if seconds is None:
        return "-"
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, seconds_left = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {seconds_left}s"
    hours, minutes_left = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes_left}m"
    days, hours_left = divmod(hours, 24)
    return f"{days}d {hours_left}h"


def moment(value: datetime | None) -> str:
    """A moment in UTC to the second, ``2026-12-03 10:58:38Z`` (``-`` for ``None``)."""
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%SZ")


def pretty_json(value: Any) -> str:
    """``value`` as indented JSON (arguments, results and metadata are JSON values)."""
    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()


def count(value: int, limit: int) -> str:
    """A count with thousands separators; above ``limit`` (a capped count), ``limit+``."""
    return f"{limit:,}+" if value > limit else f"{value:,}"


def create_engine() -> JinjaTemplateEngine:
    """The dashboard's template engine: its package's templates, autoescaped, strict about undefined names."""
    environment = Environment(
        loader=PackageLoader("litestar_queues.litestar.dashboard", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(age=age, moment=moment, pretty_json=pretty_json, count=count)
    environment.globals.update(statuses=list(TaskStatus), retryable=RETRYABLE, cancellable=CANCELLABLE)
    return JinjaTemplateEngine.from_environment(environment)


# -- the overview ----------------------------------------------------------------------------------------------


@dataclass
class QueueRow:
    """One queue on the overview."""

    name: str
    statistics: QueueStatistics
    paused_at: datetime | None
    per_minute: float | None
    """Attempts finished per minute over about the last minute, as the live workers report it (``None``: no
    live worker reported this queue)."""


@dataclass
class WorkerRow:
    """One live worker on the overview, with the records it runs now."""

    info: WorkerInfo
    running: list[TaskRecord] = field(default_factory=list)


@dataclass
class Overview:
    """Everything the overview page shows, read at ``now``."""

    now: datetime
    queues: list[QueueRow]
    workers: list[WorkerRow]
    schedules: list[ScheduleInfo]
    running_elsewhere: list[TaskRecord]
    """Running records whose owner is no live worker (a remote target, or a worker whose lease is running out)."""
    running_more: bool
    """More records run than the overview read (``RUNNING_SHOWN``)."""


def known_queues(
    service: QueueService, workers: Sequence[WorkerInfo], paused: dict[str, datetime], running: Sequence[TaskRecord]
) -> list[str]:
    """The queues worth a row: ``default``, every registered task's queue, those live workers serve or report, the
    paused ones and those with running records. No backend lists every queue name it ever stored cheaply."""
    names = {"default", *(task.options.queue for task in service.registry), *paused}
    if service.config.worker.queues is not None:
        names.update(service.config.worker.queues)
    for worker in workers:
        names.update(worker.queues)
    names.update(record.queue for record in running)
    return sorted(names)


async def load_overview(service: QueueService, *, count_limit: int) -> Overview:
    """Read the overview: per queue a bounded count by status, the oldest due age, the pause and the throughput
    the workers report; the live workers with what they run; the schedules with their next runs."""
    now = service.clock.now()
    workers = await service.list_workers()
    paused = await service.paused_queues()
    page = await service.list_tasks(status=TaskStatus.RUNNING, limit=RUNNING_SHOWN)
    rates = finished_per_minute(workers)
    queues = []
    for name in known_queues(service, workers, paused, page.records):
        statistics = await service.get_statistics(name, count_limit=count_limit)
        queues.append(QueueRow(name, statistics, paused.get(name), rates.get(name)))
    by_owner: dict[str | None, list[TaskRecord]] = defaultdict(list)
    for record in page.records:
        by_owner[record.owner].append(record)
    rows = [WorkerRow(info, by_owner.pop(info.id, [])) for info in workers]
    elsewhere = [record for records in by_owner.values() for record in records]
    return Overview(
        now=now,
        queues=queues,
        workers=rows,
        schedules=await service.schedules(),
        running_elsewhere=elsewhere,
        running_more=page.next_cursor is not None,
    )


# -- the job list ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobFilter:
    """The job list's filters, as given in its query string (``None``: any)."""

    status: TaskStatus | None = None
    queue: str | None = None
    task_name: str | None = None

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return self.status is not None or self.queue is not None or self.task_name is not None

    def replaced(self, **changes: Any) -> JobFilter:
        """These filters with ``changes``."""
        return dataclasses.replace(self, **changes)

    def query(self, **extra: str | None) -> str:
        """The query string of these filters plus ``extra`` (``None`` values left out), starting with ``?``."""
        values = {
            "status": None if self.status is None else self.status.value,
            "queue": self.queue,
            "task": self.task_name,
            **extra,
        }
        present = {name: value for name, value in values.items() if value}
        return "?" + urlencode(present) if present else ""

    def describe(self) -> str:
        """``status failed, queue mail`` (or ``every job``)."""
        parts = [
            f"{label} {value}"
            for label, value in (
                ("status", None if self.status is None else self.status.value),
                ("queue", self.queue),
                ("task", self.task_name),
            )
            if value
        ]
        return ", ".join(parts) if parts else "every job"

"""How the ``queues`` commands print: rich tables for people, JSON (``--json``) for scripts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click
import msgspec
from rich.console import Console
from rich.table import Column, Table

from litestar_queues import QueueStatistics, ScheduleInfo, TaskRecord, TaskStatus, WorkerInfo

__all__ = (
    "console",
    "print_json",
    "print_paused",
    "print_record",
    "print_records",
    "print_schedules",
    "print_statistics",
    "to_builtins",
)

console = Console(highlight=False, soft_wrap=True)

_STATUS_STYLE = {
    TaskStatus.PENDING: "yellow",
    TaskStatus.RUNNING: "cyan",
    TaskStatus.COMPLETED: "green",
    TaskStatus.FAILED: "red",
    TaskStatus.CANCELLED: "magenta",
    TaskStatus.EXPIRED: "bright_black",
}


def to_builtins(value: Any) -> Any:
    """Convert records, statistics and other structs to JSON-compatible builtins."""
    return msgspec.to_builtins(value, str_keys=True)


def print_json(value: Any) -> None:
    """Write ``value`` as one line of JSON to stdout."""
    click.echo(msgspec.json.encode(to_builtins(value)).decode())


def _table(*columns: Column | str, show_header: bool = True) -> Table:
    """A borderless table (ids are ``no_wrap`` columns: in a narrow terminal other cells give way, not them)."""
    return Table(*columns, box=None, show_header=show_header)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _status(status: TaskStatus) -> str:
    return f"[{_STATUS_STYLE[status]}]{status.value}[/]"


def print_records(records: Sequence[TaskRecord], next_cursor: str | None) -> None:
    """Print a page of records as a table, with the cursor of the next page."""
    table = _table(
        Column("id", no_wrap=True), "task", "queue", Column("status", no_wrap=True), "attempts", "scheduled", "finished"
    )
    for record in records:
        table.add_row(
            record.id,
            record.task_name,
            record.queue,
            _status(record.status),
            f"{record.attempts}/{record.max_retries + 1}",
            _when(record.scheduled_at),
            _when(record.finished_at),
        )
    console.print(table if records else "[bright_black]no records[/]")
    if next_cursor is not None:
        console.print(f"more: --cursor {next_cursor}")


def print_record(record: TaskRecord) -> None:
    """Print every field of one record."""
    table = _table(Column(style="bold", no_wrap=True), Column(overflow="fold"), show_header=False)
    for name, value in to_builtins(record).items():
        shown = _status(record.status) if name == "status" else msgspec.json.encode(value).decode()
        table.add_row(name, shown)
    console.print(table)


def print_statistics(statistics: QueueStatistics, workers: Sequence[WorkerInfo], now: datetime) -> None:
    """Print counts by status, the oldest pending age, and the live workers."""
    counts = _table("status", "records")
    for status in TaskStatus:
        counts.add_row(_status(status), str(statistics.counts.get(status, 0)))
    console.print(counts)
    age = statistics.oldest_pending_age(now)
    console.print(f"oldest due pending: {'-' if age is None else f'{age:.1f}s ago'}")
    table = _table(Column("worker", no_wrap=True), "host", "pid", "queues", "concurrency", "last heartbeat")
    for worker in workers:
        table.add_row(
            worker.id,
            worker.host,
            str(worker.pid),
            ",".join(worker.queues),
            str(worker.concurrency),
            _when(worker.last_heartbeat_at),
        )
    console.print(table if workers else "[bright_black]no live workers[/]")


def print_schedules(schedules: Sequence[ScheduleInfo]) -> None:
    """Print the registered schedules and their next runs."""
    table = _table("task", "schedule", "timezone", "next run", Column("pending record", no_wrap=True))
    for schedule in schedules:
        rule = f"cron {schedule.cron}" if schedule.cron is not None else f"every {schedule.interval:g}s"
        table.add_row(
            schedule.task_name, rule, schedule.timezone, _when(schedule.next_run_at), schedule.pending_record_id or "-"
        )
    console.print(table if schedules else "[bright_black]no scheduled tasks[/]")


def print_paused(paused: dict[str, datetime]) -> None:
    """Print the paused queues and since when."""
    if not paused:
        console.print("no paused queues")
        return
    table = _table("paused queue", "since")
    for queue, since in sorted(paused.items()):
        table.add_row(f"[magenta]{queue}[/]", _when(since))
    console.print(table)

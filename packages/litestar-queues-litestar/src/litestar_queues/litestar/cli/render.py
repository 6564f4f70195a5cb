"""How the ``queues`` commands print: rich tables for people, JSON (``--json``) for scripts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NoReturn

import click
import msgspec
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from litestar_queues import QueueStatistics, ScheduleInfo, TaskProgress, TaskRecord, TaskStatus, WorkerInfo
from litestar_queues.events import QueueEvent

__all__ = (
    "console",
    "fail",
    "print_events",
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


def fail(message: str) -> NoReturn:
    """End the command with exit status 1 and ``message`` as one plain line on stderr (easy to grep and log)."""
    click.echo(f"Error: {' '.join(message.split())}", err=True)
    raise click.exceptions.Exit(1)


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


def _amount(current: float | None, total: float | None, percent: float | None) -> str:
    """``3/5 (60%)``, ``3/5`` or ``3``."""
    amount = f"{current or 0:g}" if total is None else f"{current or 0:g}/{total:g}"
    return amount if percent is None else f"{amount} ({percent:g}%)"


def _progress(progress: TaskProgress | None) -> str:
    """How far the record's latest attempt got, or ``-``."""
    return "-" if progress is None else _amount(progress.current, progress.total, progress.percent)


def _progress_line(record: TaskRecord) -> str:
    """The progress with its message, and which attempt reported it when that is not the latest."""
    progress = record.progress
    if progress is None:
        return "-"
    line = _progress(progress) + (f" {progress.message}" if progress.message else "")
    if progress.attempt != record.attempts:
        line += f" (reported by attempt {progress.attempt})"
    return f"{line}, at {_when(progress.updated_at)}"


_LIST_HEADER = ("id", "status", "attempts", "progress", "scheduled", "finished", "queue", "task")


def print_records(records: Sequence[TaskRecord], next_cursor: str | None) -> None:
    """Print a page of records, one per line in aligned columns, then the cursor of the next page.

    Nothing is cut: when stdout is a terminal too narrow for the columns, each record takes two lines instead
    (id, status and attempts, then the task, queue and times). Piped output always has one line per record.
    """
    if not records:
        console.print("[bright_black]no records[/]")
    else:
        rows = [
            (
                record.id,
                record.status.value,
                f"{record.attempts}/{record.max_retries + 1}",
                _progress(record.progress),
                _when(record.scheduled_at),
                _when(record.finished_at),
                record.queue,
                record.task_name,
            )
            for record in records
        ]
        widths = [max(len(row[column]) for row in (_LIST_HEADER, *rows)) for column in range(len(_LIST_HEADER))]
        if console.is_terminal and sum(widths) + 2 * (len(widths) - 1) > console.width:
            for row, record in zip(rows, records, strict=True):
                identity, _, attempts, progress, scheduled, finished, queue, task_name = row
                times = f"scheduled {scheduled}" + ("" if finished == "-" else f", finished {finished}")
                done = "" if progress == "-" else f"  {escape(progress)}"
                console.print(f"{escape(identity)}  {_status(record.status)}  {attempts}{done}", crop=False)
                console.print(f"  {task_name} on {queue}, {times}", markup=False, crop=False)
        else:
            console.print(_aligned(_LIST_HEADER, widths), style="bold", markup=False, crop=False)
            for row, record in zip(rows, records, strict=True):
                cells = [escape(cell.ljust(width)) for cell, width in zip(row, widths, strict=True)]
                cells[1] = _status(record.status) + " " * (widths[1] - len(row[1]))
                console.print("  ".join(cells).rstrip(), crop=False)
    if next_cursor is not None:
        console.print(f"more: --cursor {next_cursor}", markup=False)


def _aligned(cells: Sequence[str], widths: Sequence[int]) -> str:
    """Cells padded to their column's width, two spaces apart."""
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()


def print_record(record: TaskRecord) -> None:
    """Print every field of one record; an error's traceback follows as text."""
    table = _table(Column(style="bold", no_wrap=True), Column(overflow="fold"), show_header=False)
    for name, value in to_builtins(record).items():
        if name == "status":
            shown = _status(record.status)
        elif name == "error" and record.error is not None:
            shown = escape(f"{record.error.type}: {record.error.message}")
        elif name == "progress":
            shown = escape(_progress_line(record))
        else:
            shown = escape(msgspec.json.encode(value).decode())
        table.add_row(name, shown)
    console.print(table)
    if record.error is not None and record.error.traceback:
        console.print("traceback:", style="bold")
        console.print(record.error.traceback.rstrip("\n"), markup=False, highlight=False)


def print_events(events: Sequence[QueueEvent], next_cursor: str | None) -> None:
    """Print a page of stored events, one per line, then the cursor of the next page."""
    if not events:
        console.print("[bright_black]no events[/]")
    else:
        table = _table(
            "occurred", "type", Column("task", no_wrap=True), "attempt", "detail", Column("id", no_wrap=True)
        )
        for event in events:
            detail = event.message or ""
            if event.type == "task.progress":
                amount = _amount(event.progress_current, event.progress_total, event.progress_percent)
                detail = f"{amount} {detail}".rstrip()
            table.add_row(
                event.occurred_at.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                escape(event.type),
                escape(event.task_id or "-"),
                "-" if event.attempt is None else str(event.attempt),
                escape(detail),
                escape(event.id),
            )
        console.print(table)
    if next_cursor is not None:
        console.print(f"more: --cursor {next_cursor}", markup=False)


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

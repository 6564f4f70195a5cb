"""The ``litestar queues`` command group: inspect and control the app's queues from a shell.

Every command opens a ``QueueService`` for the app's ``QueueConfig`` (without a worker), does one thing
and closes it. They are meant for shared backends: the memory backend lives inside one process, so a
separate CLI process sees an empty queue of its own (the commands say so).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, TypeVar, cast

import rich_click as click
from litestar import Litestar
from litestar.cli._utils import LitestarGroup

from litestar_queues import QueueService, TaskStatus
from litestar_queues.errors import DuplicateTaskError, QueueError, RecordNotFoundError
from litestar_queues.limits import MAX_NESTING
from litestar_queues.litestar.cli.render import (
    console,
    fail,
    print_events,
    print_json,
    print_paused,
    print_record,
    print_records,
    print_schedules,
    print_statistics,
)
from litestar_queues.litestar.cli.run import run_command
from litestar_queues.litestar.plugin import get_queue_plugin
from litestar_queues.litestar.runtime import QueueRuntime, event_channels

__all__ = ("queues_group",)

T = TypeVar("T")

MEMORY_BACKEND_WARNING = (
    "warning: the memory backend lives inside one process, so this command sees a queue of its own, not the "
    "app's. Use a shared backend (redis://, postgresql://, sqlite:///...) to manage the app's work from the CLI."
)

_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


@click.group(cls=LitestarGroup, name="queues")
def queues_group() -> None:
    """Run workers and inspect or control the app's task queues."""


def _with_service(app: Litestar, action: Callable[[QueueService], Awaitable[T]]) -> T:
    config = get_queue_plugin(app).config

    async def main() -> T:
        # Event channels too: a cancellation publishes an event, which must reach subscribers in other processes.
        runtime = QueueRuntime(config, start_worker=False, channels=event_channels(config), initialize_schedules=False)
        async with runtime:
            service = cast("QueueService", runtime.service)
            if service.backend.name == "memory":
                click.echo(MEMORY_BACKEND_WARNING, err=True)
            return await action(service)

    try:
        return asyncio.run(main())
    except RecordNotFoundError as exc:
        fail(f"not found: {exc}")
    except QueueError as exc:
        fail(str(exc))


@click.command(name="status")
@click.option("--queue", default=None, help="Only this queue.")
@_json_option
def status_command(app: Litestar, queue: str | None, as_json: bool) -> None:
    """Show record counts by status, the oldest waiting record, the live workers and the paused queues."""

    async def action(service: QueueService) -> None:
        statistics = await service.get_statistics(queue)
        workers = await service.list_workers()
        paused = await service.paused_queues()
        now = service.clock.now()
        if as_json:
            age = statistics.oldest_pending_age(now)
            print_json({"statistics": statistics, "oldest_pending_age": age, "workers": workers, "paused": paused})
        else:
            print_statistics(statistics, workers, now)
            print_paused(paused)

    _with_service(app, action)


@click.command(name="list")
@click.option("--status", type=click.Choice([status.value for status in TaskStatus]), default=None)
@click.option("--queue", default=None, help="Only this queue.")
@click.option("--task", "task_name", default=None, help="Only this task name.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--cursor", default=None, help="Continue after a previous page (printed as 'more: --cursor ...').")
@_json_option
def list_command(
    *,
    app: Litestar,
    status: str | None,
    queue: str | None,
    task_name: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List records, newest first."""

    async def action(service: QueueService) -> None:
        page = await service.list_tasks(status=status, queue=queue, task_name=task_name, limit=limit, cursor=cursor)
        if as_json:
            print_json({"records": page.records, "next_cursor": page.next_cursor})
        else:
            print_records(page.records, page.next_cursor)

    _with_service(app, action)


@click.command(name="show")
@click.argument("record_id")
@_json_option
def show_command(app: Litestar, record_id: str, as_json: bool) -> None:
    """Show one record: arguments, status, attempts, result or error."""

    async def action(service: QueueService) -> None:
        record = await service.get_task(record_id)
        if record is None:
            raise RecordNotFoundError(f"no record {record_id!r}")
        if as_json:
            print_json(record)
        else:
            print_record(record)

    _with_service(app, action)


@click.command(name="cancel")
@click.argument("record_id")
@_json_option
def cancel_command(app: Litestar, record_id: str, as_json: bool) -> None:
    """Cancel a pending record, or ask a running one to stop."""

    async def action(service: QueueService) -> None:
        record = await service.cancel(record_id)
        if as_json:
            print_json(record)
        elif record.status is TaskStatus.RUNNING:
            console.print(f"{record.id}: cancellation requested; the worker running it will stop it")
        else:
            console.print(f"{record.id}: {record.status.value}")

    _with_service(app, action)


@click.command(name="retry")
@click.argument("record_id")
@_json_option
def retry_command(app: Litestar, record_id: str, as_json: bool) -> None:
    """Put a failed, cancelled or expired record back in its queue."""

    async def action(service: QueueService) -> None:
        try:
            record = await service.retry(record_id)
        except DuplicateTaskError as exc:
            raise QueueError(f"cannot retry {record_id}: {exc}") from exc
        if as_json:
            print_json(record)
        else:
            console.print(f"{record.id}: {record.status.value}")

    _with_service(app, action)


def _json_value(text: str, option: str, expected: type[Any]) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=option) from None
    except RecursionError:
        raise click.BadParameter(
            f"nested too deeply: values may nest at most {MAX_NESTING} levels of arrays and objects", param_hint=option
        ) from None
    if not isinstance(value, expected):
        raise click.BadParameter(f"must be a JSON {'array' if expected is list else 'object'}", param_hint=option)
    return value


@click.command(name="enqueue")
@click.argument("task_name")
@click.option("--args", "args_json", default="[]", show_default=True, help="Positional arguments as a JSON array.")
@click.option("--kwargs", "kwargs_json", default="{}", show_default=True, help="Keyword arguments as a JSON object.")
@click.option("--queue", default=None, help="Override the task's queue.")
@click.option("--key", default=None, help="Dedup key: returns the active record holding it instead of a new one.")
@click.option("--priority", type=int, default=None, help="Higher runs first.")
@click.option("--delay", type=click.FloatRange(min=0), default=None, help="Seconds before it is due.")
@_json_option
def enqueue_command(
    *,
    app: Litestar,
    task_name: str,
    args_json: str,
    kwargs_json: str,
    queue: str | None,
    key: str | None,
    priority: int | None,
    delay: float | None,
    as_json: bool,
) -> None:
    """Enqueue a registered task by name, e.g. ``enqueue reports.build --args '["2024-06"]'``."""
    args = _json_value(args_json, "--args", list)
    kwargs = _json_value(kwargs_json, "--kwargs", dict)
    overrides = {"queue": queue, "key": key, "priority": priority, "delay": delay}
    options = {name: value for name, value in overrides.items() if value is not None}

    async def action(service: QueueService) -> None:
        try:
            outcome = await service.enqueue_by_name(task_name, args, kwargs, **options)
        except TypeError as exc:
            raise click.BadParameter(str(exc), param_hint="--args/--kwargs") from None
        if as_json:
            print_json({"record": outcome.record, "created": outcome.created})
        elif outcome.created:
            console.print(f"{outcome.record.id}: enqueued {outcome.record.task_name} on {outcome.record.queue}")
        else:
            console.print(f"{outcome.record.id}: already {outcome.record.status.value} (same key), nothing enqueued")

    _with_service(app, action)


@click.command(name="pause")
@click.argument("queue")
def pause_command(app: Litestar, queue: str) -> None:
    """Pause a queue: workers start none of its work until it is resumed (enqueues are still accepted)."""

    async def action(service: QueueService) -> None:
        paused = await service.pause_queue(queue)
        console.print(f"{queue}: paused" if paused else f"{queue}: already paused")

    _with_service(app, action)


@click.command(name="resume")
@click.argument("queue")
def resume_command(app: Litestar, queue: str) -> None:
    """Resume a paused queue: workers take its due work again at once."""

    async def action(service: QueueService) -> None:
        resumed = await service.resume_queue(queue)
        console.print(f"{queue}: resumed" if resumed else f"{queue}: was not paused")

    _with_service(app, action)


@click.command(name="schedules")
@_json_option
def schedules_command(app: Litestar, as_json: bool) -> None:
    """List scheduled tasks and their next runs."""

    async def action(service: QueueService) -> None:
        schedules = await service.schedules()
        if as_json:
            print_json(schedules)
        else:
            print_schedules(schedules)

    _with_service(app, action)


def _moment(text: str | None, option: str) -> datetime | None:
    """An ISO 8601 moment given on the command line (UTC when it names no offset)."""
    if text is None:
        return None
    try:  # Python 3.10 reads no "Z"
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
    except ValueError:
        fail(f"{option} must be an ISO 8601 moment such as 2026-01-31T12:00:00Z, got {text!r}")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


@click.command(name="events")
@click.argument("record_id", required=False)
@click.option("--type", "event_type", default=None, help="Only events of this type (e.g. task.progress).")
@click.option("--queue", default=None, help="Only events of this queue.")
@click.option("--since", default=None, help="Only events at or after this ISO 8601 moment (UTC without an offset).")
@click.option("--before", default=None, help="Only events before this ISO 8601 moment (UTC without an offset).")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--cursor", default=None, help="Continue after a previous page (printed as 'more: --cursor ...').")
@click.option("--newest-first", is_flag=True, help="Newest events first.")
@_json_option
def events_command(
    *,
    app: Litestar,
    record_id: str | None,
    event_type: str | None,
    queue: str | None,
    since: str | None,
    before: str | None,
    limit: int,
    cursor: str | None,
    newest_first: bool,
    as_json: bool,
) -> None:
    """List stored events (QueueEventConfig(history=True)), oldest first: of one record, or by type, queue and time."""
    since_moment, before_moment = _moment(since, "--since"), _moment(before, "--before")

    async def action(service: QueueService) -> None:
        try:
            page = await service.list_events(
                task_id=record_id,
                event_type=event_type,
                queue=queue,
                since=since_moment,
                before=before_moment,
                limit=limit,
                cursor=cursor,
                newest_first=newest_first,
            )
        except ValueError as exc:
            fail(str(exc))
        if as_json:
            print_json({"events": page.events, "next_cursor": page.next_cursor})
        else:
            print_events(page.events, page.next_cursor)

    _with_service(app, action)


for _command in (
    run_command,
    status_command,
    list_command,
    show_command,
    events_command,
    cancel_command,
    retry_command,
    enqueue_command,
    pause_command,
    resume_command,
    schedules_command,
):
    queues_group.add_command(_command)

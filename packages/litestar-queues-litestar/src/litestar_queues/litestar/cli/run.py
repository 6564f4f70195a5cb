"""``litestar queues run``: a standalone worker process (or several, supervised) for the app's ``QueueConfig``.

Signals: the first SIGTERM or SIGINT (Ctrl+C) drains — claiming stops and running tasks get
``--drain-timeout`` seconds to finish; the second stops at once, handing unfinished tasks back to pending so
another worker runs them. Either way nothing is lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import signal
import sys
from typing import Any

import rich_click as click
from litestar import Litestar
from litestar.cli._utils import LitestarEnv
from rich.table import Table

from litestar_queues import QueueConfig, Worker, WorkerConfig
from litestar_queues.errors import QueueError
from litestar_queues.litestar.cli.render import console, fail
from litestar_queues.litestar.cli.supervisor import supervise
from litestar_queues.litestar.plugin import get_queue_plugin
from litestar_queues.litestar.runtime import QueueRuntime, event_channels

__all__ = ("run_command",)

logger = logging.getLogger("litestar_queues.litestar.cli")

_STARTUP_CANCEL_SECONDS = 10.0
"""How long a start-up interrupted by a signal gets to undo what it did."""


@click.command(name="run")
@click.option("--concurrency", type=click.IntRange(min=1), default=None, help="Tasks run at once per process.")
@click.option(
    "--queues",
    "queues",
    multiple=True,
    help="Queues to serve (repeat or comma-separate); default: 'default' and every queue a task names.",
)
@click.option("--worker-id", default=None, help="Worker identity (lease owner); with --processes N, suffixed -1..-N.")
@click.option(
    "--drain-timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds running tasks get to finish on shutdown before they go back to pending.",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes to run; a process that dies is restarted.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.option(
    "--fail-fast",
    is_flag=True,
    default=False,
    help="Exit at once (status 1) if the backend is unreachable at start-up, instead of waiting for it.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=1, max=65535),
    default=None,
    help="Serve prometheus_client's registry (where OpenTelemetry's PrometheusMetricReader reports) on this port; "
    "with --processes N, process i uses PORT+i-1.",
)
@click.option("--metrics-host", default="0.0.0.0", show_default=True, help="Address the metrics port listens on.")  # noqa: S104
def run_command(
    *,
    app: Litestar,
    env: LitestarEnv,
    concurrency: int | None,
    queues: tuple[str, ...],
    worker_id: str | None,
    drain_timeout: float | None,
    processes: int,
    log_level: str,
    fail_fast: bool,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Run a worker for the app's queues until SIGTERM or Ctrl+C (first: drain, second: stop now).

    A backend that is unreachable at start-up is waited for (logged, with backoff) unless ``--fail-fast``.
    """
    plugin = get_queue_plugin(app)
    queue_names = tuple(name.strip() for value in queues for name in value.split(",") if name.strip())
    _configure_logging(log_level)
    if processes > 1:
        commands = _child_commands(
            env=env,
            processes=processes,
            concurrency=concurrency,
            queues=queue_names,
            worker_id=worker_id,
            drain_timeout=drain_timeout,
            log_level=log_level,
            fail_fast=fail_fast,
            metrics=None if metrics_port is None else (metrics_host, metrics_port),
        )
        sys.exit(supervise(commands))
    if metrics_port is not None:
        _serve_metrics(metrics_host, metrics_port)
    overrides: dict[str, Any] = {
        "concurrency": concurrency,
        "queues": queue_names or None,
        "worker_id": worker_id,
        "drain_timeout": drain_timeout,
    }
    try:
        worker_config = dataclasses.replace(
            plugin.config.worker, **{name: value for name, value in overrides.items() if value is not None}
        )
        asyncio.run(_serve(plugin.config, worker_config, env.app_path, app.state, fail_fast=fail_fast))
    except QueueError as exc:
        fail(str(exc))


def _configure_logging(level: str) -> None:
    """Show litestar-queues' logs at ``level``: through the app's logging config if it set one up, else stderr."""
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("litestar_queues").setLevel(level.upper())


def _child_commands(
    *,
    env: LitestarEnv,
    processes: int,
    concurrency: int | None,
    queues: tuple[str, ...],
    worker_id: str | None,
    drain_timeout: float | None,
    log_level: str,
    fail_fast: bool,
    metrics: tuple[str, int] | None,
) -> list[list[str]]:
    base = [sys.executable, "-m", "litestar", "--app", env.app_path, "--app-dir", str(env.cwd), "queues", "run"]
    options = ["--log-level", log_level, *(["--fail-fast"] if fail_fast else [])]
    if concurrency is not None:
        options += ["--concurrency", str(concurrency)]
    if queues:
        options += ["--queues", ",".join(queues)]
    if drain_timeout is not None:
        options += ["--drain-timeout", str(drain_timeout)]
    return [
        [
            *base,
            *options,
            *(["--worker-id", f"{worker_id}-{index}"] if worker_id else []),
            *(["--metrics-host", metrics[0], "--metrics-port", str(metrics[1] + index - 1)] if metrics else []),
        ]
        for index in range(1, processes + 1)
    ]


def _serve_metrics(host: str, port: int) -> None:
    """Serve prometheus_client's default registry on ``host:port`` from a thread of this process.

    Raises:
        click.ClickException: prometheus_client is not installed, or the port cannot be bound.
    """
    try:
        from prometheus_client import start_http_server  # noqa: PLC0415 - an optional dependency
    except ImportError:
        raise click.ClickException(
            "--metrics-port needs prometheus-client: pip install 'litestar-queues[prometheus]'"
        ) from None
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        raise click.ClickException(f"--metrics-port {port}: cannot listen on {host}:{port}: {exc}") from None
    logger.info("metrics on http://%s:%d/metrics", host, port)


async def _serve(
    config: QueueConfig, worker_config: WorkerConfig, app_path: str, state: object, *, fail_fast: bool
) -> None:
    loop = asyncio.get_running_loop()
    drain = asyncio.Event()
    force = asyncio.Event()

    def on_signal(signum: signal.Signals) -> None:
        if not drain.is_set():
            logger.info(
                "%s: draining for up to %gs; send it again to stop now", signum.name, worker_config.drain_timeout
            )
            drain.set()
        else:
            logger.warning("%s again: stopping now, unfinished tasks go back to pending", signum.name)
            force.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    # No app lifespan runs in this process, so the worker starts the event channels itself.
    runtime = QueueRuntime(
        config,
        start_worker=True,
        worker_config=worker_config,
        channels=event_channels(config),
        state=state,
        wait_for_backend=not fail_fast,
    )
    if not await _started(runtime, drain):
        return
    try:
        worker = runtime.worker
        if worker is None:  # pragma: no cover - start_worker=True always starts one
            raise RuntimeError("the worker did not start")
        _freeze_startup_objects()
        _print_banner(config, worker, app_path)
        await drain.wait()
        stopping = asyncio.ensure_future(worker.stop())
        forced = asyncio.ensure_future(force.wait())
        await asyncio.wait((stopping, forced), return_when=asyncio.FIRST_COMPLETED)
        if not stopping.done():
            await worker.stop(drain_timeout=0)
        forced.cancel()
        await stopping
    finally:
        await runtime.__aexit__(None, None, None)


async def _started(runtime: QueueRuntime, signalled: asyncio.Event) -> bool:
    """Enter ``runtime``; a signal meanwhile (while it waits for the backend, say) stops the start-up instead.

    Returns whether the runtime is entered. Raises what the start-up raised.
    """
    starting = asyncio.ensure_future(runtime.__aenter__())
    signal_wait = asyncio.ensure_future(signalled.wait())
    await asyncio.wait((starting, signal_wait), return_when=asyncio.FIRST_COMPLETED)
    signal_wait.cancel()
    if not starting.done():
        logger.info("stopping before the worker started")
        starting.cancel()
        await asyncio.wait((starting,), timeout=_STARTUP_CANCEL_SECONDS)
        if not starting.done() or starting.cancelled() or starting.exception() is not None:
            return False
        await runtime.__aexit__(None, None, None)  # it finished starting as it was told to stop
        return False
    starting.result()
    return True


def _freeze_startup_objects() -> None:
    """Move what the app's startup allocated (modules, routes, the app itself) out of the collector's sight.

    They live as long as this process, yet every full collection would walk them again while tasks run: with
    a busy worker that is a pause of tens of milliseconds every few thousand tasks. This process is the
    worker's alone, so it may decide; an in-app worker leaves the web process's collector as it is.
    """
    gc.collect()
    gc.freeze()
    logger.info("froze %d startup objects: garbage collections skip them", gc.get_freeze_count())


_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def _events_line(config: QueueConfig) -> str:
    """``off``, ``on``, or ``on, stored for 7d`` (the event history and its retention: d, h, m or s)."""
    events = config.event_config
    if not events.enabled:
        return "off"
    if not events.history:
        return "on"
    retention = events.history_retention
    if retention is None:
        return "on, stored forever"
    unit, seconds = next((unit, seconds) for unit, seconds in _UNITS if retention % seconds == 0 or unit == "s")
    return f"on, stored for {retention / seconds:g}{unit}"


def _print_banner(config: QueueConfig, worker: Worker, app_path: str) -> None:
    service = worker.service
    tasks = sorted(task.name for task in service.registry)
    scheduled = sum(1 for task in service.registry if task.schedule is not None)
    table = Table(show_header=False, box=None, title="litestar-queues worker", title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("app", app_path)
    table.add_row("worker", f"{worker.id} (pid {os.getpid()})")
    table.add_row("backend", service.backend.name)
    table.add_row("queues", ", ".join(worker.queues))
    table.add_row("concurrency", str(worker.config.concurrency))
    table.add_row("drain timeout", f"{worker.config.drain_timeout:g}s")
    table.add_row("tasks", f"{len(tasks)} ({', '.join(tasks) or 'none: check QueueConfig.task_modules'})")
    table.add_row("schedules", str(scheduled))
    table.add_row("events", _events_line(config))
    console.print(table)
    if service.backend.name == "memory":
        console.print(
            "[yellow]warning:[/] the memory backend lives inside this process: only work enqueued here (schedules) "
            "is run. Use a shared backend so the web app and this worker see the same queue."
        )
    console.print("ready: Ctrl+C or SIGTERM drains, a second one stops at once")

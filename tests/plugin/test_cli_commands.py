"""The ``litestar queues`` commands in-process (click's runner), against the example app on a SQLite file.

``tests/e2e/test_cli.py`` runs the CLI as real processes; these tests cover every command's output and errors
without paying for a process start each time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from litestar.cli.main import litestar_group

from litestar_queues import Outcome, QueueConfig, QueueService, TaskError, TaskStatus, Worker
from litestar_queues.events import QueueEventConfig

pytest.importorskip("litestar_queues.backends.sqlspec", reason="these tests share a SQLite file with the CLI")

ROOT = Path(__file__).resolve().parents[2]
Invoke = Callable[..., Result]


@pytest.fixture
def backend_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, backend_url: str) -> Invoke:
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setenv("LITESTAR_APP", "examples.app:create_app")  # the CLI sets it; monkeypatch restores it
    monkeypatch.setenv("LITESTAR_QUEUES_BACKEND", backend_url)
    monkeypatch.setenv("LITESTAR_QUEUES_IN_APP_WORKER", "0")
    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(
            litestar_group, ["--app", "examples.app:create_app", "--app-dir", str(ROOT), "queues", *args]
        )

    return invoke


def enqueue_later(backend_url: str, **options: Any) -> str:
    """Put a report an hour in the future into the shared file (nothing runs it during the test)."""
    from examples.tasks import build_report

    async def enqueue() -> str:
        async with QueueService(QueueConfig(queue_backend=backend_url)) as service:
            outcome = await service.enqueue(build_report.using(delay=3600, **options), "later")
            return outcome.record.id

    return asyncio.run(enqueue())


def test_list_show_cancel_retry(cli: Invoke, backend_url: str) -> None:
    record_id = enqueue_later(backend_url)

    table = cli("list")
    assert table.exit_code == 0, table.output
    assert record_id in table.stdout
    assert "reports.build" in table.stdout
    assert "pending" in table.stdout

    assert [record["id"] for record in json.loads(cli("list", "--status", "pending", "--json").stdout)["records"]] == [
        record_id
    ]
    assert json.loads(cli("list", "--status", "completed", "--json").stdout) == {"records": [], "next_cursor": None}
    assert json.loads(cli("list", "--task", "other.task", "--json").stdout)["records"] == []

    shown = cli("show", record_id)
    assert shown.exit_code == 0, shown.output
    assert "task_name" in shown.stdout
    assert '["later"]' in shown.stdout

    cancelled = cli("cancel", record_id)
    assert cancelled.exit_code == 0, cancelled.output
    assert f"{record_id}: cancelled" in cancelled.stdout
    retried = cli("retry", record_id, "--json")
    assert json.loads(retried.stdout)["status"] == "pending"
    assert json.loads(retried.stdout)["attempts"] == 0


def test_list_pages_with_a_cursor(cli: Invoke, backend_url: str) -> None:
    ids = [enqueue_later(backend_url) for _ in range(3)]
    first = json.loads(cli("list", "--limit", "2", "--json").stdout)
    assert [record["id"] for record in first["records"]] == ids[:0:-1]
    assert "more: --cursor" in cli("list", "--limit", "2").stdout
    second = json.loads(cli("list", "--limit", "2", "--cursor", first["next_cursor"], "--json").stdout)
    assert [record["id"] for record in second["records"]] == ids[:1]


def test_missing_records(cli: Invoke) -> None:
    for command in ("show", "cancel", "retry"):
        result = cli(command, "no-such-record")
        assert result.exit_code == 1
        assert "not found" in result.stderr


def test_enqueue_with_options_and_dedup_key(cli: Invoke) -> None:
    options = ("--queue", "reports", "--key", "monthly", "--priority", "5", "--delay", "60")
    first = cli("enqueue", "reports.build", "--args", '["May"]', *options, "--json")
    assert first.exit_code == 0, first.output
    created = json.loads(first.stdout)
    assert created["created"] is True
    record = created["record"]
    assert (record["queue"], record["key"], record["priority"], record["args"]) == ("reports", "monthly", 5, ["May"])
    again = cli("enqueue", "reports.build", "--args", '["May"]', *options)
    assert f"{record['id']}: already pending (same key), nothing enqueued" in again.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--args", "not json"), 2, "not valid JSON"),
        (("--args", '{"a": 1}'), 2, "must be a JSON array"),
        (("--kwargs", "[1]"), 2, "must be a JSON object"),
        (("--kwargs", '{"nope": 1}'), 2, "task 'reports.build'"),
    ],
)
def test_enqueue_rejects_bad_arguments(cli: Invoke, args: tuple[str, ...], code: int, message: str) -> None:
    result = cli("enqueue", "reports.build", *args)
    assert result.exit_code == code
    assert message in result.stderr


def test_enqueue_unknown_task(cli: Invoke) -> None:
    result = cli("enqueue", "no.such.task")
    assert result.exit_code == 1
    assert "no task is registered as 'no.such.task'" in result.stderr


def test_status_and_schedules_tables(cli: Invoke, backend_url: str) -> None:
    enqueue_later(backend_url)
    status = cli("status")
    assert status.exit_code == 0, status.output
    assert "pending" in status.stdout
    assert "no live workers" in status.stdout
    assert json.loads(cli("status", "--queue", "default", "--json").stdout)["statistics"]["queue"] == "default"

    schedules = cli("schedules")
    assert schedules.exit_code == 0, schedules.output
    assert "reports.cleanup" in schedules.stdout
    assert "cron 0 3 * * *" in schedules.stdout
    listed = json.loads(cli("schedules", "--json").stdout)
    assert ("reports.cleanup", "0 3 * * *", "UTC") in [
        (item["task_name"], item["cron"], item["timezone"]) for item in listed
    ]


def test_the_memory_backend_is_called_out(cli: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LITESTAR_QUEUES_BACKEND")
    result = cli("status", "--json")
    assert result.exit_code == 0, result.output
    assert "the memory backend lives inside one process" in result.stderr


def test_pause_and_resume_a_queue(cli: Invoke, backend_url: str) -> None:
    assert "no paused queues" in cli("status").stdout
    paused = cli("pause", "reports")
    assert paused.exit_code == 0, paused.output
    assert "reports: paused" in paused.stdout
    assert "reports: already paused" in cli("pause", "reports").stdout
    status = cli("status")
    assert "paused queue" in status.stdout and "reports" in status.stdout
    assert list(json.loads(cli("status", "--json").stdout)["paused"]) == ["reports"]

    async def paused_in_storage() -> dict[str, Any]:
        async with QueueService(QueueConfig(queue_backend=backend_url)) as service:
            return await service.paused_queues()

    assert list(asyncio.run(paused_in_storage())) == ["reports"]  # kept in the shared file, not in the CLI process
    assert "reports: resumed" in cli("resume", "reports").stdout
    assert "reports: was not paused" in cli("resume", "reports").stdout
    assert json.loads(cli("status", "--json").stdout)["paused"] == {}


def test_retry_of_a_record_that_cannot_be_retried_exits_1(cli: Invoke, backend_url: str) -> None:
    record_id = enqueue_later(backend_url)
    result = cli("retry", record_id)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: cannot retry {record_id}: it is pending; only failed, cancelled or expired records can be retried"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--args", '["t"]', "--kwargs", '{"steps": "many"}'),
            "task 'reports.build': argument 'steps' (expects int): Expected `int`, got `str`",
        ),
        (("--args", "[[1, 2]]"), "task 'reports.build': argument 'title' (expects str): Expected `str`, got `array`"),
        (("--args", "[" * 1000 + "]" * 1000), "nested too deeply: values may nest at most 64 levels"),
    ],
    ids=["wrong-type-kwarg", "wrong-type-arg", "nested-1000"],
)
def test_enqueue_names_the_argument_that_does_not_fit(cli: Invoke, args: tuple[str, ...], message: str) -> None:
    result = cli("enqueue", "reports.build", *args)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.replace("│", " ").split()), result.stderr
    assert json.loads(cli("list", "--json").stdout)["records"] == [], "nothing was stored"


def test_a_bad_option_given_as_kwargs_exits_1_with_one_line(cli: Invoke) -> None:
    result = cli("enqueue", "reports.build", "--args", '["t"]', "--kwargs", '{"priority": "high"}')
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (  # (before it, the log may say the tables were just created)
        "Error: task 'reports.build': option 'priority' must be an integer, got 'high' (str)"
    )


def test_a_relative_sqlite_path_in_a_missing_folder_is_one_line(
    cli: Invoke, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LITESTAR_QUEUES_BACKEND", "sqlite:///var/jobs.db")
    result = cli("list")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: sqlspec backend (aiosqlite) at sqlite:///var/jobs.db: the folder {tmp_path}/var of the database "
        "file does not exist ('var/jobs.db' is relative to the working directory; for the absolute path "
        "/var/jobs.db use four slashes: sqlite:////var/jobs.db)"
    ]


def test_an_unknown_postgresql_role_is_one_line_without_the_password(
    cli: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    from litestar_queues.testing import server_url

    url = server_url("LQ_POSTGRES_DSN").replace("postgresql://postgres@", "postgresql://ghost:hunter2@", 1)
    monkeypatch.setenv("LITESTAR_QUEUES_BACKEND", url)
    result = cli("status")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: sqlspec backend (asyncpg) at postgresql://ghost:***@")
    assert line.endswith('cannot be reached: InvalidAuthorizationSpecificationError: role "ghost" does not exist')


def test_show_prints_a_traceback_as_text(cli: Invoke, backend_url: str) -> None:
    from examples.tasks import build_report

    async def fail_one() -> str:
        async with QueueService(QueueConfig(queue_backend=backend_url)) as service:
            record_id = (await service.enqueue(build_report, "x")).record.id
            claimed = await service.backend.claim_record(
                record_id, owner="w", now=service.clock.now(), lease_seconds=30
            )
            assert claimed is not None
            error = TaskError(type="builtins.ValueError", message="bad page", traceback='Traceback:\n  File "r.py"\n')
            failed = Outcome(status=TaskStatus.FAILED, error=error)
            await service.backend.finish(claimed.lease, failed, now=service.clock.now())
            return record_id

    record_id = asyncio.run(fail_one())
    shown = cli("show", record_id).stdout
    assert "builtins.ValueError: bad page" in shown
    assert 'traceback:\nTraceback:\n  File "r.py"\n' in shown, shown
    assert "\\n" not in shown, "no escaped JSON"


def test_list_fits_80_columns_and_reads_well_when_piped(cli: Invoke, backend_url: str) -> None:
    ids = [enqueue_later(backend_url, queue="reports-with-a-long-queue-name") for _ in range(2)]
    lines = cli("list").stdout.splitlines()  # the runner is not a terminal: as when piped, one line per record
    assert lines[0].split() == ["id", "status", "attempts", "progress", "scheduled", "finished", "queue", "task"]
    assert [line.split()[0] for line in lines[1:]] == ids[::-1]
    assert all(line.split()[-2:] == ["reports-with-a-long-queue-name", "reports.build"] for line in lines[1:])
    assert not any("…" in line for line in lines), "nothing is cut"


def test_list_on_a_narrow_terminal_gives_each_record_two_lines(backend_url: str) -> None:
    from rich.console import Console

    from litestar_queues.litestar.cli import render

    record_id = enqueue_later(backend_url, queue="reports-with-a-long-queue-name")

    async def page() -> Any:
        async with QueueService(QueueConfig(queue_backend=backend_url)) as service:
            return await service.list_tasks()

    records = asyncio.run(page()).records
    narrow = Console(width=80, force_terminal=True, color_system=None, soft_wrap=True, record=True)
    original, render.console = render.console, narrow
    try:
        render.print_records(records, None)
    finally:
        render.console = original
    lines = narrow.export_text().splitlines()
    assert lines[0] == f"{record_id}  pending  0/2"
    assert lines[1].startswith("  reports.build on reports-with-a-long-queue-name, scheduled ")
    assert max(len(line) for line in lines) <= 80


def test_run_says_when_its_metrics_port_is_taken(cli: Invoke) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("run", "--metrics-host", "127.0.0.1", "--metrics-port", str(port))
    assert result.exit_code == 1, result.output
    assert f"--metrics-port {port}: cannot listen on 127.0.0.1:{port}" in result.output


def test_run_gives_each_supervised_process_its_own_metrics_port() -> None:
    from litestar.cli._utils import LitestarEnv

    from litestar_queues.litestar.cli.run import _child_commands

    env = LitestarEnv(app_path="app:app", cwd=ROOT, app=None)  # type: ignore[arg-type]
    commands = _child_commands(
        env=env,
        processes=3,
        concurrency=None,
        queues=(),
        worker_id=None,
        drain_timeout=None,
        log_level="info",
        fail_fast=True,
        metrics=("127.0.0.1", 9464),
    )
    assert [command[command.index("--metrics-port") + 1] for command in commands] == ["9464", "9465", "9466"]
    assert all(command[command.index("--metrics-host") + 1] == "127.0.0.1" for command in commands)
    assert all("--fail-fast" in command for command in commands)


def run_a_report(backend_url: str, steps: int = 3) -> str:
    """Run one report to completion on the shared file, its events stored (as the example app stores them)."""
    from examples.database import Report, alchemy
    from examples.tasks import build_report

    async def run() -> str:
        async with alchemy.get_engine().begin() as connection:  # what the app's start-up does (create_all)
            await connection.run_sync(Report.metadata.create_all)
        events = QueueEventConfig(enabled=True, history=True)
        async with QueueService(QueueConfig(queue_backend=backend_url, event_config=events)) as service:
            outcome = await service.enqueue(build_report, "stored", steps=steps, step_seconds=0)
            await Worker(service).run_until_idle()
            return outcome.record.id

    return asyncio.run(run())


def test_list_and_show_say_how_far_a_record_got(cli: Invoke, backend_url: str) -> None:
    record_id = run_a_report(backend_url)
    row = next(line for line in cli("list").stdout.splitlines() if line.startswith(record_id))
    assert "3/3 (100%)" in row
    shown = cli("show", record_id).stdout
    assert "3/3 (100%) aggregate, at " in shown
    progress = json.loads(cli("show", record_id, "--json").stdout)["progress"]
    assert {key: progress[key] for key in ("current", "total", "percent", "message", "attempt")} == {
        "current": 3,
        "total": 3,
        "percent": 100.0,
        "message": "aggregate",
        "attempt": 1,
    }
    assert json.loads(cli("list", "--json").stdout)["records"][0]["progress"] == progress


def test_events_lists_the_stored_history_of_a_record_by_type_and_page(cli: Invoke, backend_url: str) -> None:
    record_id, other = run_a_report(backend_url), run_a_report(backend_url, steps=1)
    expected = ["task.started", "task.log", *["task.progress"] * 3, "task.log", "task.completed"]
    page = json.loads(cli("events", record_id, "--json").stdout)
    assert [event["type"] for event in page["events"]] == expected
    assert {event["taskId"] for event in page["events"]} == {record_id}
    assert page["next_cursor"] is None

    table = cli("events", record_id).stdout
    assert "1/3 (33.33%) collect data" in table and "report ready" in table

    progress = json.loads(cli("events", "--type", "task.progress", "--json").stdout)["events"]
    assert [(event["taskId"], event["progressCurrent"]) for event in progress] == [
        (record_id, 1),
        (record_id, 2),
        (record_id, 3),
        (other, 1),
    ]
    newest = json.loads(cli("events", "--type", "task.completed", "--newest-first", "--json").stdout)["events"]
    assert [event["taskId"] for event in newest] == [other, record_id]

    first = json.loads(cli("events", record_id, "--limit", "4", "--json").stdout)
    assert "more: --cursor" in cli("events", record_id, "--limit", "4").stdout
    rest = json.loads(cli("events", record_id, "--limit", "4", "--cursor", first["next_cursor"], "--json").stdout)
    assert [event["id"] for event in first["events"] + rest["events"]] == [event["id"] for event in page["events"]]

    started = page["events"][0]["occurredAt"]
    assert json.loads(cli("events", record_id, "--before", started, "--json").stdout)["events"] == []
    assert len(json.loads(cli("events", record_id, "--since", started, "--json").stdout)["events"]) == len(expected)


def test_events_refuses_a_bad_moment_or_cursor(cli: Invoke) -> None:
    for args, message in (
        (("--since", "yesterday"), "--since must be an ISO 8601 moment"),
        (("--cursor", "nonsense"), "malformed event cursor"),
    ):
        result = cli("events", *args)
        assert result.exit_code == 1, result.output
        assert message in result.stderr
    assert "no events" in cli("events", "no-such-record").stdout

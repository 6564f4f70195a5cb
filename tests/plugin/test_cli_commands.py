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

from litestar_queues import QueueConfig, QueueService

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

"""Every runnable example in docs/examples and examples/ runs and checks its own output."""

from __future__ import annotations

import asyncio
import runpy
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = [
    "docs/examples/seed_events.py",
    "docs/examples/seed_migration.py",
    "docs/examples/advanced_alchemy_app.py",
    "examples/quickstart.py",
]


def _run(script: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    from litestar_queues import default_registry

    before = {t.name for t in default_registry}
    monkeypatch.setattr(sys, "argv", [script])
    try:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    finally:
        for name in {t.name for t in default_registry} - before:
            default_registry.unregister(name)
    return capsys.readouterr().out


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(script, capsys, monkeypatch).strip()


@pytest.mark.parametrize(
    ("script", "scheme", "answer"),
    [
        ("docs/examples/pgbouncer_worker.py", "postgresql:", "2 + 3 = 5"),  # SQLSpec
        ("docs/examples/pgbouncer_alchemy_worker.py", "postgresql+asyncpg:", "6 * 7 = 42"),  # Advanced Alchemy
    ],
)
def test_the_pgbouncer_examples_run_through_the_test_pgbouncer(
    script: str, scheme: str, answer: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from litestar_queues.backends.sqlspec.names import TableNames
    from litestar_queues.testing import server_url

    direct = server_url("LQ_POSTGRES_DSN")
    names = TableNames(f"lqdoc{uuid.uuid4().hex[:8]}_", "postgres")  # both backends' table names
    monkeypatch.setenv("QUEUE_DATABASE_URL", server_url("LQ_PGBOUNCER_DSN").replace("postgresql:", scheme, 1))
    monkeypatch.setenv("QUEUE_DIRECT_URL", direct.replace("postgresql:", scheme, 1))
    monkeypatch.setenv("QUEUE_TABLE_PREFIX", names.prefix)
    try:
        out = _run(script, capsys, monkeypatch)
    finally:
        asyncio.run(_drop(direct, names))
    assert "wakeups: LISTEN on the direct connection" in out
    assert answer in out


async def _drop(dsn: str, names: Any) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        for table in (names.tasks, names.workers, names.locks, names.pauses, names.events):
            await connection.execute(f"DROP TABLE IF EXISTS {table}")
        await connection.execute("DELETE FROM ddl_migrations WHERE version_num LIKE $1", f"ext_{names.extension}_%")
    finally:
        await connection.close()


def test_the_observability_example_prints_its_trace_and_metrics() -> None:
    """In a process of its own: it sets the global OpenTelemetry providers, as an app does."""
    import subprocess

    script = ROOT / "docs/examples/observability_app.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "POST /reports/42 <- (root)",
        "enqueue default <- POST /reports/42",
        "process default <- enqueue default",
        "render <- process default",
        "GET /metrics <- (root)",
        "litestar_queues_tasks_enqueued_total 1.0",
        "litestar_queues_tasks_started_total 1.0",
        "litestar_queues_tasks_completed_total 1.0",
    ]

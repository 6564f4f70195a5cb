"""Every runnable example in docs/examples and examples/ runs and checks its own output."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = [
    "docs/examples/seed_events.py",
    "docs/examples/seed_migration.py",
    "docs/examples/advanced_alchemy_app.py",
    "examples/quickstart.py",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from litestar_queues import default_registry

    before = {t.name for t in default_registry}
    monkeypatch.setattr(sys, "argv", [script])
    try:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    finally:
        for name in {t.name for t in default_registry} - before:
            default_registry.unregister(name)
    assert capsys.readouterr().out.strip()


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

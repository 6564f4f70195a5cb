"""The plugin, dependency and streaming examples in docs/examples run as written (``python <file>``)."""

from __future__ import annotations

import runpy
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from litestar_queues import default_registry

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


@pytest.fixture
def examples_importable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run with docs/examples first on sys.path (for ``app.tasks``) and forget what the example registered."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    tasks_before = {registered.name for registered in default_registry}
    modules_before = set(sys.modules)
    yield
    for name in {registered.name for registered in default_registry} - tasks_before:
        default_registry.unregister(name)
    for name in set(sys.modules) - modules_before:
        if name == "app" or name.startswith("app."):
            del sys.modules[name]


@pytest.mark.usefixtures("examples_importable")
@pytest.mark.parametrize(
    ("script", "prints"),
    [
        ("plugin_app.py", "transcoded v-42 in task "),
        ("plugin_state_keys.py", "jobs_service and jobs_worker are on app.state"),
        pytest.param(
            "realtime_websocket.py",
            "eve: close 1008\nada: task.started -> task.log -> task.progress -> task.event -> task.completed",
            # The seed's handler declares `task_id: str`; Litestar 2.25 asks for FromPath[str] but still runs it.
            marks=pytest.mark.filterwarnings("ignore:.*'task_id' declared using deprecated inferred style"),
        ),
        ("realtime_tenants.py", "globex: 403 / close 1008; acme: task.started, task.progress, task.completed"),
        ("dashboard_app.py", "overview 200, queue mail listed: True; job page 200: True; without the header 401"),
    ],
)
def test_example_runs(script: str, prints: str, capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    assert prints in capsys.readouterr().out


@pytest.mark.usefixtures("examples_importable")
def test_the_redis_setup_of_realtime_md_streams_from_a_worker_process(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from litestar_queues.testing.servers import server_url

    # A logical database of its own on the shared server, for the example's default key prefixes.
    monkeypatch.setenv("REDIS_URL", server_url("LQ_REDIS_URL").rsplit("/", 1)[0] + "/10")
    runpy.run_path(str(EXAMPLES / "realtime_redis.py"), run_name="__main__")
    printed = capsys.readouterr().out
    live = "live from the worker process: task.started -> task.progress -> task.progress -> task.progress"
    assert live + " -> task.completed" in printed
    assert "reopened after the job: 5 events again; progress on the record: 100.0%" in printed

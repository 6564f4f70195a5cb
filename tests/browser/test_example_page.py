"""The example app's page in headless Chromium, on Redis with a separate worker process: a job enqueued from the page
shows its progress live, and the page reopened after the job finished shows every event and a full bar.

One setting (``LITESTAR_QUEUES_BACKEND``, a Redis URL) makes Redis the queue and the event transport of both
processes; the web process runs no worker (``LITESTAR_QUEUES_IN_APP_WORKER=0``).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from litestar_queues.testing.servers import server_url

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ["task.started", "task.log", "task.progress", "task.progress", "task.progress", "task.log", "task.completed"]
"""What the log shows for a report of three steps, in order."""


@pytest.fixture
def env() -> dict[str, str]:
    url = server_url("LQ_REDIS_URL").rsplit("/", 1)[0] + "/9"  # a logical database of its own on the shared server
    return {"LITESTAR_QUEUES_BACKEND": url, "LITESTAR_QUEUES_IN_APP_WORKER": "0", "PYTHONPATH": str(ROOT)}


@pytest.fixture
def worker(env: dict[str, str], spawn: Callable[..., subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """``litestar --app examples.app:app queues run`` with the same setting."""
    return spawn([sys.executable, "-m", "litestar", "--app", "examples.app:app", "queues", "run"], env)


def log_types(page: Page) -> list[str]:
    """The event type of each line of the page's event log (``<time>  <type>  <message>``)."""
    return [line.split("  ")[1] for line in page.locator("#log div").all_inner_texts()]


def test_live_progress_from_a_separate_worker_then_the_whole_story_after_reopening(
    page: Page,
    serve: Callable[..., str],
    env: dict[str, str],
    worker: subprocess.Popen[bytes],
    screenshot: Callable[[Page, str], None],
) -> None:
    base = serve("examples.app:app", env)
    page.goto(base + "/")
    page.locator("input[name=title]").fill("Browser report")
    page.locator("input[name=steps]").fill("3")
    page.locator("input[name=step_seconds]").fill("1")
    page.get_by_role("button", name="Enqueue").click()

    # Live: the bar moves and the log grows while the job is still running in the worker process.
    expect(page.locator("#job-status")).to_have_text("running", timeout=30_000)
    page.wait_for_function("document.getElementById('progress').value > 0", timeout=30_000)
    assert page.locator("#job-status").inner_text() == "running"
    assert page.locator("#progress").evaluate("bar => bar.value") < 100
    assert "task.progress" in log_types(page)

    expect(page.locator("#job-status")).to_have_text("completed", timeout=30_000)
    expect(page.locator("#result")).to_contain_text('"pages": 9')
    assert log_types(page) == EVENTS
    job_url = page.url
    assert "#" in job_url

    # Reopened in a new tab after the job finished: its stored events, the progress on its record.
    reopened = page.context.new_page()
    reopened.goto(job_url)
    expect(reopened.locator("#job-status")).to_have_text("completed")
    expect(reopened.locator("#log div")).to_have_count(len(EVENTS))
    assert log_types(reopened) == EVENTS
    assert reopened.locator("#progress").evaluate("bar => bar.value") == 100
    expect(reopened.locator("#step")).to_contain_text("aggregate")
    expect(reopened.locator("#result")).to_contain_text('"pages": 9')
    screenshot(reopened, "example-reopened")

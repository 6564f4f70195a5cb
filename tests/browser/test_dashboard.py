"""The dashboard in headless Chromium, on memory, Redis and PostgreSQL: every page opens, a job enqueued from the
page shows its progress live, a failed job is retried, and a queue is paused and resumed.

With ``LQ_SCREENSHOTS=<folder>`` the memory run saves the pages shown in docs/dashboard.md.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from litestar_queues.testing.servers import server_url

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(params=["memory", "redis", "postgresql"])
def dashboard(request: pytest.FixtureRequest, serve: Callable[..., str]) -> str:
    """The base URL of the dashboard of ``dashboard_app.py`` on one backend (its own key or table prefix)."""
    backends = {"memory": lambda: "memory", "redis": lambda: server_url("LQ_REDIS_URL")}
    backends["postgresql"] = lambda: server_url("LQ_POSTGRES_DSN")
    env = {"LQ_BROWSER_BACKEND": backends[request.param](), "LQ_BROWSER_PREFIX": f"lqb{uuid.uuid4().hex[:10]}_"}
    return serve("dashboard_app:app", env, ready_path="/queues/") + "/queues"


def enqueue(page: Page, base: str, task: str, args: str) -> str:
    """Enqueue through the job list's form; return the new job's id (the form leads to its page)."""
    page.goto(f"{base}/jobs")
    page.get_by_text("Enqueue a job").click()
    form = page.locator("form.enqueue")
    form.locator("select[name=task]").select_option(task)
    form.locator("input[name=args]").fill(args)
    form.get_by_role("button", name="Enqueue").click()
    page.wait_for_url(re.compile(r".*/jobs/[0-9a-f-]{36}\?notice=enqueued$"))
    expect(page.locator(".notice")).to_have_text("The job is enqueued.")
    return page.url.split("/jobs/")[1].split("?")[0]


def job_status(page: Page) -> str:
    return page.locator(".job-heading .status").inner_text()


def test_dashboard_in_a_browser(
    page: Page, dashboard: str, request: pytest.FixtureRequest, screenshot: Callable[[Page, str], None]
) -> None:
    memory = request.node.callspec.params["dashboard"] == "memory"

    # The overview: queues with counts, the in-app worker, the schedule.
    page.goto(f"{dashboard}/")
    expect(page.get_by_role("heading", name="Queues")).to_be_visible()
    expect(page.locator('tr[data-queue="browser"]')).to_be_visible()
    expect(page.locator("table.workers tbody tr")).to_have_count(1)
    expect(page.locator("table.schedules")).to_contain_text("reports.nightly")
    expect(page.locator("table.schedules")).to_contain_text("cron 0 3 * * *")

    # A job enqueued from the page reports its progress live: the bar moves before the job ends.
    job_id = enqueue(page, dashboard, "browser.steps", "[16, 0.3]")
    bar = page.locator(f'[data-job-progress="{job_id}"] progress')
    expect(page.locator(".job-heading .status")).to_have_text("running")
    page.wait_for_function(
        "bar => bar.value > 0 && bar.value < 100", arg=bar.element_handle(), polling=50, timeout=20_000
    )
    midway = bar.evaluate("bar => bar.value")
    expect(page.locator(f'[data-job-events="{job_id}"] li[data-event-type="task.progress"]').first).to_be_visible()
    if memory:
        screenshot(page, "job-running")
    # The page reads the job again once its terminal event arrives: the result is there, the events stay.
    expect(page.locator('pre[data-field="result"]')).to_have_text('{\n  "steps": 16\n}', timeout=30_000)
    assert job_status(page) == "completed"
    assert midway < 100
    expect(page.locator(f'[data-job-events="{job_id}"] li[data-event-type="task.progress"]')).to_have_count(16)

    # The job list, filtered by status.
    page.goto(f"{dashboard}/jobs?status=completed")
    expect(page.locator(f'tr[data-job="{job_id}"]')).to_contain_text("browser.steps")
    expect(page.locator("table.jobs tbody tr")).to_have_count(1)

    # A failed job shows its traceback and is retried from its page.
    failing = enqueue(page, dashboard, "browser.fail_once", '["import"]')
    expect(page.locator('pre[data-field="traceback"]')).to_contain_text("fails on its first attempt", timeout=20_000)
    assert job_status(page) == "failed"
    if memory:
        screenshot(page, "job-failed")
    page.get_by_role("button", name="Retry").click()
    expect(page.locator(".notice")).to_have_text("The job is pending again.")
    expect(page.locator('pre[data-field="result"]')).to_have_text('"import worked on retry"', timeout=20_000)
    assert page.url.startswith(f"{dashboard}/jobs/{failing}")

    # Pausing a queue: a job enqueued on it waits; resuming lets it run.
    page.goto(f"{dashboard}/")
    page.locator("[data-autorefresh]").uncheck()  # it would swap the table while the test clicks in it
    page.locator('tr[data-queue="browser"]').get_by_role("button", name="Pause").click()
    expect(page.locator(".notice")).to_contain_text("The queue is paused")
    expect(page.locator('tr[data-queue="browser"] .badge.paused')).to_be_visible()
    held = enqueue(page, dashboard, "browser.steps", "[1, 0]")
    page.wait_for_timeout(1500)  # several polls and wakeups of the worker: a paused queue gives it nothing
    page.reload()
    assert job_status(page) == "pending"
    page.goto(f"{dashboard}/")
    page.locator("[data-autorefresh]").uncheck()
    if memory:
        screenshot(page, "overview")
    page.locator('tr[data-queue="browser"]').get_by_role("button", name="Resume").click()
    expect(page.locator(".notice")).to_have_text("The queue is resumed.")
    expect(page.locator('tr[data-queue="browser"] .badge.paused')).to_have_count(0)
    page.goto(f"{dashboard}/jobs/{held}")
    expect(page.locator(".job-heading .status")).to_have_text("completed", timeout=20_000)

    # The job list with everything that happened, and a job running with its progress bar.
    enqueue(page, dashboard, "browser.steps", "[40, 0.25]")
    expect(page.locator(".job-heading .status")).to_have_text("running")
    page.goto(f"{dashboard}/jobs")
    expect(page.locator("table.jobs tbody tr")).to_have_count(5)  # with the schedule's pending run
    running = page.locator("tr[data-live-job]")
    expect(running.locator(".status")).to_have_text("running")
    page.wait_for_function(
        "bar => bar.value > 0", arg=running.locator("progress").element_handle(), polling=50, timeout=20_000
    )
    if memory:
        screenshot(page, "jobs")

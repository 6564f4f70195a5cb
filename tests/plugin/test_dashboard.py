"""The dashboard through Litestar's test client, on the memory backend: pages, actions, CSRF, guards, read-only.

The browser tests (tests/browser/) drive the same pages in Chromium on memory, Redis and PostgreSQL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler
from litestar.testing import TestClient

from litestar_queues import QueueConfig, QueuePlugin, QueueService, TaskRegistry, TaskStatus, task
from litestar_queues.errors import ConfigurationError
from litestar_queues.litestar import DashboardConfig

registry = TaskRegistry()


@task("dash.add", queue="math", registry=registry)
async def add(a: int, b: int) -> int:
    return a + b


@task("dash.fail", queue="math", registry=registry)
async def fail(reason: str) -> None:
    raise ValueError(reason)


@task("dash.nightly", cron="0 3 * * *", registry=registry)
async def nightly() -> None: ...


def make_app(dashboard: DashboardConfig | None, **app_options: Any) -> Litestar:
    config = QueueConfig(in_app_worker=False, dashboard=dashboard)
    plugin = QueuePlugin(config=config)
    return Litestar(plugins=[plugin], logging_config=None, **app_options)  # logging stays pytest's (caplog)


@pytest.fixture(autouse=True)
def _registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # The service uses the default registry: give it this module's tasks only.
    monkeypatch.setattr("litestar_queues.service.default_registry", registry)


@pytest.fixture
def client() -> Iterator[TestClient[Litestar]]:
    with TestClient(make_app(DashboardConfig(page_size=2, bulk_limit=3, count_limit=2))) as client:
        yield client


def service_of(client: TestClient[Litestar]) -> QueueService:
    service: QueueService = client.app.state["queue_service"]
    return service


def run(client: TestClient[Litestar], coroutine: Any) -> Any:
    """Run a coroutine on the app's event loop (the memory backend belongs to it)."""
    assert client.blocking_portal is not None
    return client.blocking_portal.call(lambda: coroutine)


def csrf_token(client: TestClient[Litestar], path: str = "/queues/") -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', client.get(path).text)
    assert match, "the page has no CSRF token"
    return match.group(1)


def post(client: TestClient[Litestar], path: str, **fields: str) -> Any:
    token = csrf_token(client, "/queues/jobs")
    return client.post(path, data={"_csrf_token": token, **fields}, follow_redirects=False)


def test_the_dashboard_is_off_by_default() -> None:
    with TestClient(make_app(None)) as client:
        assert client.get("/queues/").status_code == 404


def test_overview_shows_queues_counts_workers_and_schedules(client: TestClient[Litestar]) -> None:
    service = service_of(client)
    for n in range(3):
        run(client, service.enqueue(add, n, n))
    run(client, service.pause_queue("math"))
    page = client.get("/queues/")
    assert page.status_code == 200
    html = page.text
    row = html[html.index('data-queue="math"') :].split("</tr>", 1)[0]
    assert "paused" in row
    assert "2+" in row  # three pending, counted up to count_limit=2
    assert 'action="/queues/queue/resume"' in row
    assert 'data-queue="default"' in html
    assert "dash.nightly" in html and "cron 0 3 * * *" in html
    assert "No live worker" in html


def test_jobs_list_filters_and_pages_with_a_cursor(client: TestClient[Litestar]) -> None:
    service = service_of(client)
    ids = [run(client, service.enqueue(add, n, n)).id for n in range(3)]
    other = run(client, service.enqueue(fail, "x"))
    first = client.get("/queues/jobs", params={"task": "dash.add"})
    assert first.status_code == 200
    assert ids[2] in first.text and ids[1] in first.text and ids[0] not in first.text
    assert other.id not in first.text
    older = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&"))
    assert ids[0] in second.text and ids[1] not in second.text
    assert 'rel="next"' not in second.text
    assert "« newest" in second.text
    assert client.get("/queues/jobs", params={"status": "nope"}).status_code == 400
    assert "No job matches status failed" in client.get("/queues/jobs", params={"status": "failed"}).text


def test_search_finds_a_job_by_id_or_dedup_key(client: TestClient[Litestar]) -> None:
    service = service_of(client)
    keyed = run(client, service.enqueue(add.using(key="invoice-7"), 1, 2))
    by_key = client.get("/queues/jobs", params={"q": "invoice-7"}, follow_redirects=False)
    assert by_key.status_code == 303 and by_key.headers["location"] == f"/queues/jobs/{keyed.id}"
    by_id = client.get("/queues/jobs", params={"q": f" {keyed.id} "}, follow_redirects=False)
    assert by_id.headers["location"] == f"/queues/jobs/{keyed.id}"
    missed = client.get("/queues/jobs", params={"q": "nothing-like-it"})
    assert missed.status_code == 200 and "No job has the id or dedup key" in missed.text


def test_job_page_shows_arguments_result_error_and_traceback(client: TestClient[Litestar]) -> None:
    service = service_of(client)
    from litestar_queues import Worker

    done = run(client, service.enqueue(add, 20, 22))
    failed = run(client, service.enqueue(fail, "<b>boom</b>"))
    run(client, Worker(service).run_until_idle(timeout=5))
    page = client.get(f"/queues/jobs/{done.id}").text
    assert '<pre class="json" data-field="args">[\n  20,\n  22\n]</pre>' in page
    assert 'data-field="result">42</pre>' in page
    failed_page = client.get(f"/queues/jobs/{failed.id}").text
    assert "builtins.ValueError" in failed_page
    assert "&lt;b&gt;boom&lt;/b&gt;" in failed_page and "<b>boom</b>" not in failed_page  # escaped
    assert 'data-field="traceback">Traceback' in failed_page
    assert 'action="/queues/jobs/' + failed.id + '/retry"' in failed_page
    assert client.get("/queues/jobs/00000000-0000-7000-8000-000000000000").status_code == 404
    assert client.get("/queues/jobs/not-an-id").status_code == 404


def test_actions_need_the_csrf_token(client: TestClient[Litestar]) -> None:
    service = service_of(client)
    record = run(client, service.enqueue(add, 1, 1))
    csrf_token(client)  # the cookie is set by a page; without a token in the form, the action is refused anyway
    refused = client.post(f"/queues/jobs/{record.id}/cancel", follow_redirects=False)
    assert refused.status_code == 403
    forged = client.post(f"/queues/jobs/{record.id}/cancel", data={"_csrf_token": "0" * 128}, follow_redirects=False)
    assert forged.status_code == 403
    assert run(client, service.get_task(record.id)).status is TaskStatus.PENDING
    cookie = next(c for c in client.cookies.jar if c.name == "litestar_queues_csrf")
    assert cookie.path == "/queues"


def test_retry_and_cancel_one_job(client: TestClient[Litestar]) -> None:
    service = service_of(client)
    record = run(client, service.enqueue(add, 1, 1))
    cancelled = post(client, f"/queues/jobs/{record.id}/cancel")
    assert cancelled.status_code == 303
    assert cancelled.headers["location"] == f"/queues/jobs/{record.id}?notice=cancelled"
    assert run(client, service.get_task(record.id)).status is TaskStatus.CANCELLED
    assert "The job is cancelled." in client.get(cancelled.headers["location"]).text
    retried = post(client, f"/queues/jobs/{record.id}/retry")
    assert retried.headers["location"].endswith("notice=retried")
    assert run(client, service.get_task(record.id)).status is TaskStatus.PENDING
    keyed = run(client, service.enqueue(add.using(key="k"), 1, 1))
    run(client, service.cancel(keyed.id))
    run(client, service.enqueue(add.using(key="k"), 2, 2))
    conflict = post(client, f"/queues/jobs/{keyed.id}/retry")
    assert conflict.status_code == 409 and "cannot be retried" in conflict.text


def test_bulk_retry_asks_first_and_stops_at_the_bulk_limit(client: TestClient[Litestar]) -> None:
    service = service_of(client)
    records = [run(client, service.enqueue(add, n, n)) for n in range(5)]
    for record in records:
        run(client, service.cancel(record.id))
    asked = post(client, "/queues/jobs/bulk", action="retry", status="", queue="math", task="")
    assert asked.status_code == 200
    assert "Retry more than 3 job(s)?" in asked.text and 'name="confirm" value="yes"' in asked.text
    assert all(run(client, service.get_task(r.id)).status is TaskStatus.CANCELLED for r in records)  # not yet
    done = post(client, "/queues/jobs/bulk", action="retry", status="", queue="math", task="", confirm="yes")
    assert done.status_code == 303 and "notice=bulk_retry&count=3" in done.headers["location"]
    statuses = [run(client, service.get_task(r.id)).status for r in reversed(records)]
    assert statuses == [TaskStatus.PENDING] * 3 + [TaskStatus.CANCELLED] * 2  # the newest three
    nothing = post(client, "/queues/jobs/bulk", action="retry", status="failed", queue="", task="")
    assert nothing.headers["location"].endswith("notice=nothing")
    assert post(client, "/queues/jobs/bulk", action="drop").status_code == 400


def test_pause_and_resume_a_queue(client: TestClient[Litestar]) -> None:
    service = service_of(client)
    paused = post(client, "/queues/queue/pause", queue="math")
    assert paused.headers["location"] == "/queues/?notice=paused"
    assert list(run(client, service.paused_queues())) == ["math"]
    assert post(client, "/queues/queue/pause", queue="math").headers["location"].endswith("already_paused")
    assert post(client, "/queues/queue/resume", queue="math").headers["location"].endswith("notice=resumed")
    assert run(client, service.paused_queues()) == {}
    assert post(client, "/queues/queue/pause", queue="").status_code == 400
    assert post(client, "/queues/queue/drain", queue="math").status_code == 404


def test_enqueue_from_the_dashboard(client: TestClient[Litestar]) -> None:
    service = service_of(client)
    created = post(client, "/queues/enqueue", task="dash.add", args="[2, 3]", kwargs="{}", queue="", delay="60")
    assert created.status_code == 303
    record_id = created.headers["location"].split("/jobs/")[1].split("?")[0]
    record = run(client, service.get_task(record_id))
    assert record.args == [2, 3] and record.queue == "math" and record.scheduled_at > record.created_at
    for fields in ({"task": "dash.add", "args": "nope"}, {"task": "dash.add", "args": '{"a": 1}'}, {"task": "x"}):
        assert post(client, "/queues/enqueue", **fields).status_code == 400


def test_read_only_offers_no_action_and_has_no_action_routes() -> None:
    with TestClient(make_app(DashboardConfig(read_only=True))) as client:
        service = service_of(client)
        record = run(client, service.enqueue(fail, "x"))
        run(client, service.cancel(record.id))
        page = client.get(f"/queues/jobs/{record.id}").text
        assert "read-only" in page and 'method="post"' not in page
        assert 'method="post"' not in client.get("/queues/").text + client.get("/queues/jobs").text
        for path in (f"/queues/jobs/{record.id}/retry", "/queues/queue/pause", "/queues/jobs/bulk", "/queues/enqueue"):
            assert client.post(path, data={"queue": "math"}).status_code in (404, 405)
        assert run(client, service.get_task(record.id)).status is TaskStatus.CANCELLED


def _admins_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if connection.headers.get("x-role") != "admin":
        raise NotAuthorizedException("admins only")


def test_guards_cover_every_dashboard_route(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), TestClient(make_app(DashboardConfig(guards=[_admins_only]))) as client:
        for path in ("/queues/", "/queues/jobs", "/queues/static/dashboard.css", "/queues/events?job=x"):
            assert client.get(path).status_code == 401, path
        assert client.post("/queues/queue/pause", data={"queue": "q"}).status_code in (401, 403)
        assert client.get("/queues/", headers={"x-role": "admin"}).status_code == 200
        assert client.get("/queues/static/dashboard.js", headers={"x-role": "admin"}).status_code == 200
    assert "has no guards" not in caplog.text


def test_a_dashboard_without_guards_is_warned_about_at_startup(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), TestClient(make_app(DashboardConfig(path="/admin/jobs"))):
        pass
    assert "dashboard at /admin/jobs has no guards" in caplog.text


def test_an_app_csrf_config_protects_the_dashboard_with_its_own_token() -> None:
    app = make_app(DashboardConfig(), csrf_config=CSRFConfig(secret="s" * 32, cookie_name="app_csrf"))
    with TestClient(app) as client:
        service = service_of(client)
        record = run(client, service.enqueue(add, 1, 1))
        token = csrf_token(client, "/queues/jobs")
        assert "litestar_queues_csrf" not in {cookie.name for cookie in client.cookies.jar}
        assert client.post(f"/queues/jobs/{record.id}/cancel", follow_redirects=False).status_code == 403
        done = client.post(f"/queues/jobs/{record.id}/cancel", data={"_csrf_token": token}, follow_redirects=False)
        assert done.status_code == 303


def test_live_events_are_offered_only_with_events_on_channels(client: TestClient[Litestar]) -> None:
    assert "data-live=" not in client.get("/queues/").text
    assert client.get("/queues/events", params={"job": "x"}).status_code == 404


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"path": "queues"}, "absolute URL path"),
        ({"page_size": 0}, "page_size"),
        ({"count_limit": 0}, "count_limit"),
        ({"bulk_limit": 0}, "bulk_limit"),
        ({"csrf_secret": "short"}, "csrf_secret"),
    ],
)
def test_dashboard_config_is_checked(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        DashboardConfig(**options)


def test_queue_config_dashboard_must_be_a_dashboard_config() -> None:
    with pytest.raises(ConfigurationError, match="must be a DashboardConfig"):
        make_app({"path": "/queues"})  # type: ignore[arg-type]


def test_dashboard_config_is_importable_from_the_package_root() -> None:
    from litestar_queues import DashboardConfig as FromRoot

    assert FromRoot is DashboardConfig

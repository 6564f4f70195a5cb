"""The example app in a real uvicorn process: enqueue over HTTP, watch the job over a websocket and over SSE."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_ws import WebSocketSession, WebSocketUpgradeError, connect_ws

from litestar_queues.testing import server_url

TERMINAL = {"task.completed", "task.failed", "task.cancelled"}
# reports.build with 3 steps: what a subscriber sees, in order.
EXPECTED = ["task.started", "task.log", "task.progress", "task.progress", "task.progress", "task.log", "task.completed"]


TOKENS: dict[str, str] = {}
"""The events token each job's creator got (the example app lets only its holder watch the job)."""


def enqueue(base_url: str, *, steps: int = 3, step_seconds: float = 0.05) -> str:
    response = httpx.post(
        f"{base_url}/api/jobs", json={"title": "e2e", "steps": steps, "step_seconds": step_seconds}, timeout=5
    )
    assert response.status_code == 201, response.text
    job_id = str(response.json()["id"])
    TOKENS[job_id] = response.json()["events_token"]
    return job_id


def ws_url(base_url: str, job_id: str) -> str:
    return f"{base_url.replace('http://', 'ws://')}/api/jobs/{job_id}/events?token={TOKENS[job_id]}"


def sse_url(base_url: str, job_id: str) -> str:
    return f"{base_url}/api/jobs/{job_id}/events/sse?token={TOKENS[job_id]}"


def receive_until_finished(ws: WebSocketSession) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while not events or events[-1]["type"] not in TERMINAL:
        events.append(json.loads(ws.receive_text(timeout=10)))
    return events


def sse_events(response: httpx.Response) -> Iterator[dict[str, str]]:
    """Parse a text/event-stream body into its messages (``id``, ``data``, ...)."""
    message: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if message:
                yield message
            message = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            message[field] = value.removeprefix(" ")


def read_sse(response: httpx.Response, *, stop_after: int | None = None) -> list[dict[str, Any]]:
    """Events from an SSE response until the job finishes (or ``stop_after`` events); checks every ``id:``."""
    events: list[dict[str, Any]] = []
    for message in sse_events(response):
        event = json.loads(message["data"])
        assert message["id"] == event["id"]
        events.append(event)
        if event["type"] in TERMINAL or len(events) == stop_after:
            break
    return events


def assert_one_clean_run(events: list[dict[str, Any]], job_id: str) -> None:
    assert [event["type"] for event in events] == EXPECTED
    assert {event["taskId"] for event in events} == {job_id}
    assert len({event["id"] for event in events}) == len(events), "an event was delivered twice"
    sequences = [event["sequence"] for event in events]
    assert sequences == sorted(sequences), "events out of order"
    assert [event["progressPercent"] for event in events if event["type"] == "task.progress"] == [33.33, 66.67, 100.0]


def test_the_page_is_served(example_server: Any) -> None:
    response = httpx.get(example_server.url + "/", timeout=5)
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "/api/jobs/${job.jobId}/events" in response.text


def test_job_events_over_a_websocket(example_server: Any) -> None:
    job_id = enqueue(example_server.url)
    with connect_ws(ws_url(example_server.url, job_id)) as ws:
        events = receive_until_finished(ws)
    assert_one_clean_run(events, job_id)
    job = httpx.get(f"{example_server.url}/api/jobs/{job_id}", timeout=5).json()
    assert job["status"] == "completed"
    assert job["result"] == {"title": "e2e", "pages": 9, "steps": ["collect data", "clean rows", "aggregate"]}
    reports = httpx.get(f"{example_server.url}/api/reports", timeout=5).json()
    assert {"job": job_id, "title": "e2e", "pages": 9} in reports, "the attempt's database session stored it"


def test_job_events_over_sse(example_server: Any) -> None:
    job_id = enqueue(example_server.url)
    with httpx.stream("GET", sse_url(example_server.url, job_id), timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = read_sse(response)
    assert_one_clean_run(events, job_id)


def test_only_the_holder_of_a_jobs_token_may_watch_it(example_server: Any) -> None:
    job_id, other = enqueue(example_server.url), enqueue(example_server.url)
    plain = f"{example_server.url}/api/jobs/{job_id}/events/sse"
    for url in (plain, f"{plain}?token=forged", f"{plain}?token={TOKENS[other]}"):
        assert httpx.get(url, timeout=5).status_code == 403, url
    # closed before the handshake completes: uvicorn answers the upgrade request with 403
    with pytest.raises(WebSocketUpgradeError) as refused, connect_ws(ws_url(example_server.url, job_id).split("?")[0]):
        pass
    assert refused.value.response.status_code == 403
    assert "?token=${job.token}" in httpx.get(example_server.url + "/", timeout=5).text


def test_clients_leaving_mid_stream_do_not_disturb_the_server(example_server: Any) -> None:
    job_id = enqueue(example_server.url, steps=5, step_seconds=0.1)
    with connect_ws(ws_url(example_server.url, job_id)) as ws:
        ws.receive_text(timeout=10)
    with httpx.stream("GET", sse_url(example_server.url, job_id), timeout=10) as response:
        assert len(read_sse(response, stop_after=2)) == 2
    with connect_ws(ws_url(example_server.url, job_id)) as ws:  # the job still streams to whoever stays
        events = receive_until_finished(ws)
    assert events[-1]["type"] == "task.completed"
    # (the module fixture checks the server logged no traceback)


def test_a_subscriber_arriving_after_the_job_gets_its_history(example_server: Any, wait_for: Any) -> None:
    job_id = enqueue(example_server.url)

    def finished() -> bool:
        return httpx.get(f"{example_server.url}/api/jobs/{job_id}", timeout=5).json()["status"] == "completed"

    wait_for(finished, what="the job to complete")
    with connect_ws(ws_url(example_server.url, job_id)) as ws:
        events = receive_until_finished(ws)
    assert_one_clean_run(events, job_id)


def test_sse_reconnect_resumes_after_last_event_id(example_server: Any, wait_for: Any) -> None:
    job_id = enqueue(example_server.url, step_seconds=0.2)
    url = sse_url(example_server.url, job_id)
    with httpx.stream("GET", url, timeout=10) as response:
        first = read_sse(response, stop_after=3)
    assert [event["type"] for event in first] == EXPECTED[:3]
    # The job runs on (and ends) while nobody listens: the events it publishes meanwhile are in its stored history.
    wait_for(lambda: job(example_server.url, job_id)["status"] == "completed", what="the job to complete")
    with httpx.stream("GET", url, headers={"Last-Event-ID": first[-1]["id"]}, timeout=10) as response:
        rest = read_sse(response)
    assert_one_clean_run(first + rest, job_id)


def test_a_page_reopened_after_the_job_sees_its_progress_on_the_record(example_server: Any, wait_for: Any) -> None:
    job_id = enqueue(example_server.url)
    wait_for(lambda: job(example_server.url, job_id)["status"] == "completed", what="the job to complete")
    finished = job(example_server.url, job_id)
    assert (finished["progress"], finished["step"]) == (100.0, "aggregate")


def job(base_url: str, job_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{base_url}/api/jobs/{job_id}", timeout=5).json())


def _backend_url(kind: str, tmp_path: Path) -> str:
    if kind == "advanced-alchemy":
        return kind  # the app's own database, through its Advanced Alchemy config
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    if kind == "postgresql":
        return server_url("LQ_POSTGRES_DSN_2")  # a database of its own: other tests' apps use the first one
    base = server_url(f"LQ_{kind.upper()}_URL")
    return base.rsplit("/", 1)[0] + "/7"  # a logical database of its own on the shared server


@pytest.mark.parametrize("kind", ["redis", "valkey", "postgresql", "sqlite", "advanced-alchemy"])
def test_the_example_app_runs_on_another_backend_with_one_setting(kind: str, tmp_path: Path, launch: Any) -> None:
    server = launch.uvicorn(env={"LITESTAR_QUEUES_BACKEND": _backend_url(kind, tmp_path)})
    server.wait_ready()
    job_id = enqueue(server.url)
    with connect_ws(ws_url(server.url, job_id)) as ws:
        events = receive_until_finished(ws)
    assert_one_clean_run(events, job_id)
    assert httpx.get(f"{server.url}/api/jobs/{job_id}", timeout=5).json()["status"] == "completed"
    assert job_id in [report["job"] for report in httpx.get(f"{server.url}/api/reports", timeout=5).json()]
    assert server.stop() in (0, -signal.SIGTERM), server.output
    assert "Traceback" not in server.output, server.output


def test_a_separate_worker_serves_the_queue_in_the_app_database(launch: Any, wait_for: Any) -> None:
    """Advanced Alchemy outside the app's lifespan: ``litestar queues run`` finds the app's config, creates nothing
    twice, stores the report with its own session per attempt, and drains on SIGTERM."""
    env = {"LITESTAR_QUEUES_BACKEND": "advanced-alchemy", "LITESTAR_QUEUES_IN_APP_WORKER": "0"}
    web = launch.uvicorn(env)
    web.wait_ready()
    worker = launch.process([sys.executable, "-m", "litestar", "--app", "examples.app:app", "queues", "run"], env)
    worker.wait_for_output("ready:")
    assert "advanced_alchemy" in worker.output
    job_id = enqueue(web.url, step_seconds=0.3)

    def status() -> str:
        return str(httpx.get(f"{web.url}/api/jobs/{job_id}", timeout=5).json()["status"])

    wait_for(lambda: status() == "running", what="the worker to start the job")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.output
    assert status() == "completed", "the job finished while its worker drained"
    assert job_id in [report["job"] for report in httpx.get(f"{web.url}/api/reports", timeout=5).json()]
    assert "Traceback" not in worker.output, worker.output


def test_a_separate_worker_on_redis_streams_live_events_with_one_setting(launch: Any, wait_for: Any) -> None:
    # One setting for both processes: the Redis URL is the queue and the event transport (Redis streams).
    url = server_url("LQ_REDIS_URL").rsplit("/", 1)[0] + "/8"  # a logical database of its own on the shared server
    env = {"LITESTAR_QUEUES_BACKEND": url, "LITESTAR_QUEUES_IN_APP_WORKER": "0"}
    web = launch.uvicorn(env=env)
    run = ["queues", "run", "--worker-id", "e2e-redis"]
    worker = launch.process([sys.executable, "-m", "litestar", "--app", "examples.app:app", *run], env)
    web.wait_ready()
    worker.wait_for_output("ready:")
    job_id = enqueue(web.url, steps=3, step_seconds=0.5)
    with connect_ws(ws_url(web.url, job_id)) as ws:
        events = [json.loads(ws.receive_text(timeout=15))]
        while events[-1]["type"] != "task.progress":
            events.append(json.loads(ws.receive_text(timeout=15)))
        # The first progress arrived while the job still had two steps to go: live, from the other process.
        assert job(web.url, job_id)["status"] == "running"
        events += receive_until_finished(ws)
    assert_one_clean_run(events, job_id)
    assert {event["workerId"] for event in events} == {"e2e-redis"}
    # Reopened after the job: every event again, from the stored history (the web process ran nothing).
    with connect_ws(ws_url(web.url, job_id)) as ws:
        again = receive_until_finished(ws)
    assert [event["id"] for event in again] == [event["id"] for event in events]
    assert job(web.url, job_id)["progress"] == 100.0
    assert web.stop() in (0, -signal.SIGTERM), web.output
    assert worker.stop() == 0, worker.output
    assert "Traceback" not in web.output + worker.output, web.output + worker.output

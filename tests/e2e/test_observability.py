"""Observability across real processes: a request to a web process (uvicorn) enqueues on Redis, ``litestar queues run``
executes; the spans both recorded (in-memory exporters, written at exit) form one trace per first attempt, a retry
links to it; the Prometheus endpoints of both show the workload."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
from tests.e2e.conftest import Launcher, free_port, litestar_args, wait_for
from tests.spans import Spans

from litestar_queues.testing import server_url

APP = "tests.e2e.observability_app:app"


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value, without the scope labels the OpenTelemetry exporter adds."""
    found = {}
    for line in text.splitlines():
        if line.startswith("litestar_queues_"):
            series, value = line.rsplit(" ", 1)
            found[re.sub(r'otel_scope_[a-z_]+="[^"]*",?', "", series).replace(",}", "}")] = float(value)
    return found


def scrape(url: str) -> dict[str, float]:
    return samples(httpx.get(url, timeout=5).text)


def test_a_request_traces_into_the_worker_and_the_metrics_show_the_workload(launch: Launcher, tmp_path: Path) -> None:
    env = {
        "LQ_OBS_REDIS": server_url("LQ_REDIS_URL"),
        "LQ_OBS_PREFIX": f"lqobs-{uuid.uuid4().hex[:8]}",
        "LQ_OBS_SPANS": str(tmp_path),
    }
    web = launch.uvicorn(env, app=APP)
    metrics_port = free_port()
    worker = launch.process(litestar_args("queues", "run", "--metrics-port", str(metrics_port), app=APP), env)
    web.wait_ready()
    worker.wait_for_output("ready:")
    ids = {
        mode: [httpx.post(f"{web.url}/jobs/{mode}", timeout=5).json()["id"] for _ in range(n)]
        for mode, n in (("ok", 3), ("fail", 1))
    }

    def status(job_id: str) -> Any:
        return httpx.get(f"{web.url}/jobs/{job_id}", timeout=5).json()["status"]

    for mode, expected in (("ok", "completed"), ("fail", "failed")):
        for job_id in ids[mode]:
            wait_for(lambda job_id=job_id, expected=expected: status(job_id) == expected, what=f"{job_id} {expected}")

    ok, fail = 'queue="default",task="obs.ok"', 'queue="default",task="obs.fail"'
    worker_metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    # the gauges come from the worker's maintenance pass (every 0.2 s here): wait for one after the workload
    seen = wait_for(
        lambda: (
            (found := scrape(worker_metrics)).get('litestar_queues_queue_depth{queue="default",status="completed"}')
            == 3
            and found
        ),
        what="the depth gauge to show the workload",
    )
    assert seen['litestar_queues_queue_depth{queue="default",status="failed"}'] == 1
    assert seen['litestar_queues_queue_depth{queue="default",status="pending"}'] == 0
    assert seen['litestar_queues_queue_oldest_due_age_seconds{queue="default"}'] == 0
    assert seen['litestar_queues_workers{queue="default"}'] == 1
    assert seen['litestar_queues_queue_paused{queue="default"}'] == 0
    assert seen[f"litestar_queues_tasks_started_total{{{ok}}}"] == 3
    assert seen[f"litestar_queues_tasks_completed_total{{{ok}}}"] == 3
    assert seen[f"litestar_queues_tasks_started_total{{{fail}}}"] == 2
    assert seen[f"litestar_queues_tasks_retried_total{{{fail}}}"] == 1
    assert seen[f"litestar_queues_tasks_failed_total{{{fail}}}"] == 1
    assert f"litestar_queues_tasks_failed_total{{{ok}}}" not in seen
    runs = "litestar_queues_task_run_duration_seconds_count"
    assert seen[f'{runs}{{queue="default",status="completed",task="obs.ok"}}'] == 3
    assert seen[f'{runs}{{queue="default",status="retrying",task="obs.fail"}}'] == 1
    assert seen[f'{runs}{{queue="default",status="failed",task="obs.fail"}}'] == 1
    assert seen[f"litestar_queues_task_wait_duration_seconds_count{{{ok}}}"] == 3
    web_metrics = scrape(f"{web.url}/metrics")  # Litestar's PrometheusController in the web process
    assert web_metrics[f"litestar_queues_tasks_enqueued_total{{{ok}}}"] == 3
    assert web_metrics[f"litestar_queues_tasks_enqueued_total{{{fail}}}"] == 1
    assert f"litestar_queues_tasks_started_total{{{ok}}}" not in web_metrics  # the web process runs nothing

    web.stop()
    assert worker.stop() == 0, worker.output
    assert "Traceback" not in worker.output, worker.output
    spans = Spans.read(tmp_path)
    requests = [span for span in spans.spans if span["kind"] == "SERVER" and span["name"].startswith("POST")]
    assert len(requests) == 4  # Litestar's own plugin, untouched
    for job_id in ids["ok"]:
        (process,) = [s for s in spans.named("process default") if s["attributes"]["messaging.message.id"] == job_id]
        enqueue = spans.by_id(process["parent_id"])
        assert enqueue["name"] == "enqueue default" and enqueue["kind"] == "PRODUCER"
        assert enqueue["pid"] != process["pid"] and enqueue["trace_id"] == process["trace_id"]
        request = spans.by_id(enqueue["parent_id"])
        assert request in requests and request["trace_id"] == process["trace_id"]
        assert process["events"] == ["claim", "finish"] and process["status"] == "UNSET"
    first, retry = spans.named("process default", "obs.fail")
    enqueue = spans.by_id(first["parent_id"])
    assert enqueue["name"] == "enqueue default" and first["trace_id"] == enqueue["trace_id"]
    assert retry["parent_id"] is None and retry["links"] == [enqueue["span_id"]]
    assert retry["trace_id"] != enqueue["trace_id"]
    assert [first["status"], retry["status"]] == ["ERROR", "ERROR"]
    assert [first["attributes"]["litestar_queues.task.status"], retry["attributes"]["litestar_queues.task.status"]] == [
        "retrying",
        "failed",
    ]
    assert "exception" in retry["events"]
    # the worker's log line of each attempt names the trace its span belongs to
    for span in (first, retry):
        assert f"attempt {span['attributes']['litestar_queues.task.attempt']} " in worker.output
        assert f"trace_id={span['trace_id']}" in worker.output

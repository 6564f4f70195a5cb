"""``litestar queues ...`` run as a user runs it, against a web process sharing a SQLite file backend."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from litestar_queues import QueueConfig, QueueService, WorkerInfo

pytest.importorskip("litestar_queues.backends.sqlspec", reason="the shared-backend CLI tests use the SQLite backend")


@pytest.fixture(scope="module")
def backend_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('cli') / 'jobs.db'}"


@pytest.fixture(scope="module")
def env(backend_url: str) -> dict[str, str]:
    """The example app split in two: the web process enqueues, ``litestar queues run`` works."""
    return {"LITESTAR_QUEUES_BACKEND": backend_url, "LITESTAR_QUEUES_IN_APP_WORKER": "0"}


@pytest.fixture(scope="module")
def web(env: dict[str, str], module_launch: Any) -> Any:
    server = module_launch.uvicorn(env)
    server.wait_ready()
    return server


def queues_run(*options: str) -> list[str]:
    return [sys.executable, "-m", "litestar", "--app", "examples.app:app", "queues", "run", *options]


def live_workers(backend_url: str) -> list[WorkerInfo]:
    async def read() -> list[WorkerInfo]:
        async with QueueService(QueueConfig(queue_backend=backend_url)) as service:
            return await service.list_workers()

    return asyncio.run(read())


def enqueue(base_url: str, *, steps: int = 1, step_seconds: float = 0.0) -> str:
    response = httpx.post(
        f"{base_url}/api/jobs", json={"title": "cli", "steps": steps, "step_seconds": step_seconds}, timeout=5
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def job(base_url: str, job_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{base_url}/api/jobs/{job_id}", timeout=5).json())


def status_is(base_url: str, job_id: str, status: str) -> bool:
    return job(base_url, job_id)["status"] == status


def test_supervised_workers_run_web_and_cli_work_restart_and_drain(
    launch: Any, web: Any, env: dict[str, str], backend_url: str, wait_for: Any
) -> None:
    supervisor = launch.process(queues_run("--processes", "2", "--worker-id", "pool", "--concurrency", "2"), env)

    def both_registered() -> dict[str, int] | None:
        workers = {worker.id: worker.pid for worker in live_workers(backend_url)}
        return workers if set(workers) == {"pool-1", "pool-2"} else None

    pids = wait_for(both_registered, timeout=30, what="two worker processes")
    supervisor.wait_for_output("ready:")
    for shown in ("litestar-queues worker", "sqlspec", "reports.build", "concurrency    2", "on, stored for 7d"):
        assert shown in supervisor.output

    job_id = enqueue(web.url)
    wait_for(lambda: status_is(web.url, job_id, "completed"), what="a worker to run the web app's job")

    status, enqueued = launch.cli_together(
        ("queues", "status", "--json"),
        (
            "queues",
            "enqueue",
            "reports.build",
            "--args",
            '["from the CLI"]',
            "--kwargs",
            '{"step_seconds": 0}',
            "--json",
        ),
        env=env,
    )
    assert status.returncode == 0, status
    statistics = json.loads(status.stdout)
    assert statistics["statistics"]["counts"]["completed"] >= 1
    assert sorted(worker["id"] for worker in statistics["workers"]) == ["pool-1", "pool-2"]
    assert enqueued.returncode == 0, enqueued
    cli_job = json.loads(enqueued.stdout)["record"]["id"]
    wait_for(lambda: status_is(web.url, cli_job, "completed"), what="a worker to run the CLI's job")
    assert job(web.url, cli_job)["result"]["title"] == "from the CLI"

    os.kill(pids["pool-1"], signal.SIGKILL)

    def restarted() -> bool:
        workers = {worker.id: worker.pid for worker in live_workers(backend_url)}
        return workers.get("pool-1") not in (None, pids["pool-1"])

    wait_for(restarted, timeout=30, what="the killed worker process to be replaced")
    assert "restarting" in supervisor.output

    drained = enqueue(web.url, steps=3, step_seconds=0.8)
    wait_for(lambda: status_is(web.url, drained, "running"), what="the task to start")
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait() == 0, supervisor.output
    assert job(web.url, drained)["status"] == "completed", "a running task finishes while its worker drains"
    assert live_workers(backend_url) == [], "workers unregister when they stop"


def test_a_second_signal_hands_running_work_back(launch: Any, web: Any, env: dict[str, str], wait_for: Any) -> None:
    worker = launch.process(queues_run(), env)
    worker.wait_for_output("ready:")
    handed_back = enqueue(web.url, steps=5, step_seconds=2.0)
    wait_for(lambda: status_is(web.url, handed_back, "running"), what="the task to start")
    worker.signal(signal.SIGTERM)
    worker.wait_for_output("SIGTERM: draining")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.output
    record = job(web.url, handed_back)
    assert record["status"] == "pending", "an interrupted task goes back to its queue, not lost"
    assert record["attempts"] == 0, "a shutdown hand-back does not use up an attempt"


def test_the_worker_placement_command_runs_as_written(launch: Any) -> None:
    """docs/deployment.md: ``LITESTAR_APP=app.asgi:app litestar queues run --drain-timeout 30``."""
    litestar = str(Path(sys.executable).with_name("litestar"))
    worker = launch.process(
        [litestar, "queues", "run", "--drain-timeout", "30"],
        {"LITESTAR_APP": "app.asgi:app"},
        cwd=Path(__file__).resolve().parents[2] / "docs" / "examples",
    )
    worker.wait_for_output("ready:")
    assert "drain timeout  30s" in worker.output
    assert "videos.transcode" in worker.output
    assert "startup objects: garbage collections skip them" in worker.output
    assert worker.stop() == 0, worker.output

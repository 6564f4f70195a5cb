"""The example app under the ways people serve it: ``litestar run --reload``, several web workers, and a
misconfiguration that must stop the server at startup with a message that says what to do."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from litestar_queues import QueueConfig, QueueService, WorkerInfo


def enqueue_and_wait(base_url: str, wait_for: Any) -> dict[str, Any]:
    response = httpx.post(f"{base_url}/api/jobs", json={"title": "served", "steps": 1, "step_seconds": 0}, timeout=5)
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]

    def finished() -> dict[str, Any] | None:
        job = httpx.get(f"{base_url}/api/jobs/{job_id}", timeout=5).json()
        return job if job["status"] == "completed" else None

    return dict(wait_for(finished, what="the in-app worker to run the job"))


def test_unknown_backend_stops_the_app_where_its_config_is_made(launch: Any) -> None:
    server = launch.uvicorn({"LITESTAR_QUEUES_BACKEND": "nosuch://localhost"})
    assert server.wait() != 0
    assert "ConfigurationError: unknown queue backend 'nosuch://localhost'" in server.output


def test_unreachable_backend_stops_startup_with_a_clear_message(launch: Any) -> None:
    server = launch.uvicorn({"LITESTAR_QUEUES_BACKEND": "sqlite:///no/such/folder/jobs.db"})
    assert server.wait() != 0
    assert (
        "litestar-queues could not start: sqlspec backend (aiosqlite) at sqlite:///no/such/folder/jobs.db: "
        "the folder" in server.output
    )
    assert "Application startup failed" in server.output


def test_litestar_run_with_reload(launch: Any, wait_for: Any) -> None:
    server = launch.litestar_run("--reload", "--reload-dir", "examples")
    server.wait_ready()
    assert enqueue_and_wait(server.url, wait_for)["result"]["title"] == "served"
    # As a service manager does: SIGTERM to the process group (CLI, reloader and server process).
    server.signal(signal.SIGTERM)
    wait_for(lambda: "Application shutdown complete" in server.output, what="a graceful shutdown")


def test_two_web_workers_each_run_a_worker(launch: Any, tmp_path: Path, wait_for: Any) -> None:
    """``uvicorn --workers 2`` (what ``litestar run --wc 2`` starts): one in-app worker per web process."""
    pytest.importorskip("litestar_queues.backends.sqlspec", reason="two web processes need a shared backend")
    backend_url = f"sqlite:///{tmp_path / 'jobs.db'}"
    server = launch.uvicorn({"LITESTAR_QUEUES_BACKEND": backend_url}, workers=2)
    server.wait_ready()

    async def read_workers() -> list[WorkerInfo]:
        async with QueueService(QueueConfig(queue_backend=backend_url)) as service:
            return await service.list_workers()

    workers = wait_for(lambda: (found := asyncio.run(read_workers())) and len(found) == 2 and found, what="2 workers")
    assert len({worker.pid for worker in workers}) == 2, "each web process runs its own in-app worker"
    enqueue_and_wait(server.url, wait_for)
    server.signal(signal.SIGTERM)
    wait_for(lambda: server.output.count("Application shutdown complete") == 2, what="both processes to shut down")

"""Seed 004's Cloud Run snippet, unchanged (docs/examples/cloudrun_app.py), runs "on Cloud Run": the app under
uvicorn dispatches it to the emulated Admin API, which runs the real ``litestar-queues-cloudrun-worker`` (loading the
app from ``LITESTAR_APP``); the task's events cross Redis Channels to the app's websocket."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from httpx_ws import aconnect_ws
from tests.cloudrun.conftest import ROOT, WORKER

from litestar_queues.execution.cloudrun import ExitCode
from litestar_queues.execution.cloudrun.testing import CloudRunEmulator
from litestar_queues.testing import server_url

pytestmark = pytest.mark.anyio

APP = "docs.examples.cloudrun_app:app"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_seed_task_runs_on_cloud_run_and_streams_its_progress_to_a_websocket(tmp_path: Path) -> None:
    redis_url = server_url("LQ_REDIS_URL")
    async with CloudRunEmulator(project="demo", region="europe-west1") as emulator:
        settings = {
            "REDIS_URL": redis_url,
            "QUEUE_KEY_PREFIX": f"lqseed-{uuid.uuid4().hex[:8]}",
            "CLOUD_RUN_API_ENDPOINT": emulator.url,
            "GOOGLE_CLOUD_PROJECT": "demo",
            "CLOUD_RUN_REGION": "europe-west1",
        }
        for job in ("worker", "worker-heavy"):  # deployed with the app's image and settings, as on Cloud Run
            emulator.add_job(job, [WORKER], env={"LITESTAR_APP": APP, **settings}, cwd=str(ROOT))
        port = free_port()
        with (tmp_path / "server.log").open("wb") as log:
            server = await asyncio.create_subprocess_exec(
                *[sys.executable, "-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(port)],
                cwd=ROOT,
                env={**os.environ, **settings},
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        try:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                for _ in range(600):
                    try:
                        if (await client.get("/")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)
                emulator.hold()  # no container starts before the websocket listens
                job_id = (await client.post("/files/f-42")).text
                async with aconnect_ws(f"{base}/jobs/{job_id}/events", client) as ws:
                    await asyncio.sleep(0.2)  # the subscription reaches Redis
                    emulator.release()
                    events = [json.loads(await ws.receive_text(timeout=60))]
                    while events[-1]["type"] != "task.completed":
                        events.append(json.loads(await ws.receive_text(timeout=60)))
            (execution,) = [await emulator.wait_finished(name) for name in emulator.executions]
        except Exception as exc:
            output = (tmp_path / "server.log").read_text(errors="replace")
            containers = "\n".join(execution.output for execution in emulator.executions.values())
            raise AssertionError(f"app output:\n{output}\ncontainers:\n{containers}") from exc
        finally:
            server.terminate()
            await server.wait()
    assert [event["type"] for event in events] == ["task.started", "task.progress", "task.log", "task.completed"]
    progress = events[1]
    assert (progress["progressCurrent"], progress["progressTotal"], progress["message"]) == (1, 3, "started")
    assert {event["executionBackend"] for event in events} == {"cloudrun"}
    assert {event["executionProfile"] for event in events} == {"worker-heavy"}
    assert events[2]["payload"] == {"file_id": "f-42"} and events[0]["taskId"] == job_id
    assert execution.job.name.endswith("/jobs/worker-heavy") and execution.exit_codes == [ExitCode.COMPLETED]

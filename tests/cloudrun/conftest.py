"""The Cloud Run end-to-end harness: the emulated Admin API spawning the real ``litestar-queues-cloudrun-worker``
against a real shared backend (Redis or PostgreSQL), and a worker of the test process dispatching to it."""

from __future__ import annotations

import asyncio
import importlib
import io
import sys
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from litestar_queues import QueueService, TaskRecord, Worker, default_registry
from litestar_queues.execution.cloudrun import CloudRunTarget
from litestar_queues.execution.cloudrun.testing import CloudRunEmulator, EmulatedExecution
from litestar_queues.testing import server_url

ROOT = Path(__file__).resolve().parents[2]
WORKER = str(Path(sys.executable).with_name("litestar-queues-cloudrun-worker"))
"""The console script installed by the litestar-queues-cloudrun distribution."""
APP = "tests.cloudrun.cloudrun_app:make_config"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["redis", "postgresql"])
def backend_url(request: pytest.FixtureRequest) -> str:
    return server_url("LQ_REDIS_URL" if request.param == "redis" else "LQ_POSTGRES_DSN")


@pytest.fixture
def start_timeout() -> float:
    """Seconds an execution has to take its record over (tests of a lost execution shorten it)."""
    return 60.0


@dataclass
class Harness:
    emulator: CloudRunEmulator
    service: QueueService
    worker: Worker
    app: ModuleType
    effects_file: Path

    @property
    def target(self) -> CloudRunTarget:
        target = self.service.targets["cloudrun"]
        assert isinstance(target, CloudRunTarget)
        return target

    async def enqueue(self, mode: str = "ok", **options: Any) -> str:
        task = self.app.effect.using(**options) if options else self.app.effect
        return (await self.service.enqueue(task, str(self.effects_file), mode)).id

    def effects(self) -> list[str]:
        return self.effects_file.read_text().splitlines() if self.effects_file.exists() else []

    def release(self) -> None:
        Path(f"{self.effects_file}.release").touch()

    async def until(self, check: Any, what: str, timeout: float = 60.0) -> Any:
        """Wait for ``await check()`` (or ``check()``) to return something truthy."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.container_output()}")
            await asyncio.sleep(0.05)

    async def record(self, record_id: str) -> TaskRecord:
        record = await self.service.get_task(record_id)
        assert record is not None
        return record

    async def final(self, record_id: str, timeout: float = 60.0) -> TaskRecord:
        async def terminal() -> TaskRecord | None:
            record = await self.record(record_id)
            return record if record.is_terminal else None

        record: TaskRecord = await self.until(terminal, f"record {record_id} to end", timeout)
        return record

    async def started(self, count: int = 1) -> None:
        await self.until(lambda: sum(line.startswith("start") for line in self.effects()) >= count, "a start")

    async def all_finished(self) -> list[EmulatedExecution]:
        return [await self.emulator.wait_finished(name, 60) for name in list(self.emulator.executions)]

    def run_requests(self) -> Iterable[Any]:
        return [request for request in self.emulator.requests if request.path.endswith(":run")]

    def container_output(self) -> str:
        return "\n".join(f"--- {name}\n{e.output}" for name, e in self.emulator.executions.items())


async def _stopped(worker: Worker) -> None:
    """Stop the worker; if that hangs, fail with every asyncio task's stack (a stop once hung under heavy load)."""
    try:
        await asyncio.wait_for(asyncio.shield(worker.stop(drain_timeout=0)), 60)
    except asyncio.TimeoutError:
        stacks = []
        for task in asyncio.all_tasks():
            buffer = io.StringIO()
            task.print_stack(file=buffer)
            stacks.append(buffer.getvalue())
        raise AssertionError("the worker did not stop within 60s:\n" + "\n".join(stacks)) from None


@pytest.fixture
async def harness(
    backend_url: str, start_timeout: float, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[Harness]:
    monkeypatch.syspath_prepend(str(ROOT))
    app = importlib.import_module("tests.cloudrun.cloudrun_app")
    try:
        async with CloudRunEmulator(project="demo", region="europe-west1", cancel_grace=1.0) as emulator:
            for job in ("worker", "worker-heavy"):
                emulator.add_job(job, [WORKER, APP, "--log-level", "debug"], cwd=str(ROOT))
            unique = uuid.uuid4().hex[:8]
            monkeypatch.setenv("LQ_E2E_CLOUDRUN", emulator.url)
            monkeypatch.setenv("LQ_E2E_BACKEND", backend_url)
            monkeypatch.setenv(
                "LQ_E2E_PREFIX", f"lqcr-{unique}" if backend_url.startswith("redis") else f"lqcr_{unique}x_"
            )
            monkeypatch.setenv("LQ_E2E_START_TIMEOUT", str(start_timeout))
            async with QueueService(app.make_config()) as service:
                worker = Worker(service)
                await worker.start()
                try:
                    yield Harness(emulator, service, worker, app, tmp_path / "effects")
                finally:
                    await _stopped(worker)
    finally:
        if "cloudrun_e2e.effect" in default_registry:
            default_registry.unregister("cloudrun_e2e.effect")
        sys.modules.pop("tests.cloudrun.cloudrun_app", None)

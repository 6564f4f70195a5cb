"""The execution target contract in core: workers dispatch through it, remote targets reconcile their own stale
attempts and cancel theirs, and a record naming a target this process lacks fails with a clear error."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
import pytest
from tests.engine.conftest import FAST_WORKER

from litestar_queues import QueueConfig, QueueService, TaskRecord, TaskRegistry, TaskStatus, Worker, task
from litestar_queues.records import Outcome, TaskError
from litestar_queues.runner import AttemptRunner, Interrupt
from litestar_queues.targets import ExecutionTarget

pytestmark = pytest.mark.anyio


class RecordingTarget(ExecutionTarget):
    """A remote target that hands each record to an owner of its own and reconciles by failing them."""

    remote = True

    def __init__(self, name: str) -> None:
        self.name = name
        self.service: QueueService | None = None
        self.dispatched: list[str] = []
        self.reconciles = 0
        self.cancelled: list[str] = []

    async def open(self, service: QueueService) -> None:
        self.service = service

    async def dispatch(self, record: TaskRecord, runner: AttemptRunner, interrupt: Interrupt | None) -> None:
        assert self.service is not None
        self.dispatched.append(record.id)
        now = self.service.clock.now()
        await self.service.backend.transfer(record.lease, owner=f"remote-{record.id}", now=now, lease_seconds=0.01)

    async def reconcile(self) -> int:
        self.reconciles += 1
        return 0

    async def cancel(self, record: TaskRecord) -> TaskRecord | None:
        assert self.service is not None
        self.cancelled.append(record.id)
        error = TaskError(type="cancelled", message="stopped remotely")
        return await self.service.runner().end(record, Outcome(status=TaskStatus.CANCELLED, error=error))


@dataclass(frozen=True)
class RecordingConfig:
    name: str = "remote"
    target: RecordingTarget = field(default_factory=lambda: RecordingTarget("remote"))

    def create_target(self) -> ExecutionTarget:
        return self.target


async def test_a_remote_target_dispatches_reconciles_and_cancels(
    registry: TaskRegistry, make_config: Callable[..., QueueConfig]
) -> None:
    @task("remote.job", registry=registry, execution_backend="remote")
    async def remote_job() -> None:
        raise AssertionError("a remote target does not run the task in the worker")

    remote = RecordingConfig()
    worker_config = dataclasses.replace(FAST_WORKER, reconcile_interval=0.05)
    config = make_config(execution_backends=(remote,), worker=worker_config)
    async with QueueService(config, registry=registry) as service:
        record_id = (await service.enqueue(remote_job)).id
        worker = Worker(service)
        await worker.start()
        try:
            for _ in range(200):
                if remote.target.dispatched and remote.target.reconciles >= 2:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)  # several maintenance passes see the expired remote lease
            record = await service.get_task(record_id)
            assert record is not None and record.status is TaskStatus.RUNNING  # stale recovery left it alone
            assert record.owner == f"remote-{record_id}" and worker.running == 0
            cancelled = await service.cancel(record_id)
        finally:
            await worker.stop()
    assert remote.target.dispatched == [record_id] and remote.target.reconciles >= 2
    assert remote.target.cancelled == [record_id] and cancelled.status is TaskStatus.CANCELLED


async def test_a_record_for_a_target_this_worker_lacks_fails_saying_so(
    registry: TaskRegistry, make_config: Callable[..., QueueConfig]
) -> None:
    @task("elsewhere.job", registry=registry)
    async def elsewhere() -> None: ...

    async with QueueService(make_config(), registry=registry) as service:
        record = service._record(service.request(elsewhere), service.clock.now())
        (outcome,) = await service.backend.enqueue([_with_backend(record, "gpu-cluster")])
        await Worker(service).run_until_idle()
        final = await service.wait_for(outcome.id, timeout=5)
    assert final.status is TaskStatus.FAILED and final.error is not None
    assert (
        final.error.type == "execution_backend_unavailable" and "'gpu-cluster' is not configured" in final.error.message
    )


def _with_backend(record: TaskRecord, name: str) -> TaskRecord:
    return msgspec.structs.replace(record, execution_backend=name)

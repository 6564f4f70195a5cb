"""Schedules: one pending record per schedule, one run per slot, definition changes, missed slots, max_instances."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from litestar_queues import QueueConfig, QueueService, TaskRegistry, TaskStatus, Worker, task

pytestmark = pytest.mark.anyio


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


async def test_one_pending_record_per_schedule_across_services(
    registry: TaskRegistry, make_config: Callable[..., QueueConfig]
) -> None:
    @task("maintenance.cleanup", cron="0 2 * * *", timezone="UTC", registry=registry)
    async def cleanup() -> None: ...

    clock = FixedClock(datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc))
    async with QueueService(make_config(clock=clock), registry=registry) as service:
        first = await service.initialize_schedules()
        second = await service.initialize_schedules()  # another process starting up
        assert [r.id for r in first] == [r.id for r in second]
        (record,) = first
        assert record.scheduled_at == datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
        assert record.metadata["schedule"]["cron"] == "0 2 * * *"
        (info,) = await service.schedules()
        assert info.next_run_at == record.scheduled_at and info.pending_record_id == record.id


async def test_changed_definition_cancels_the_old_pending_run(
    registry: TaskRegistry, make_config: Callable[..., QueueConfig]
) -> None:
    clock = FixedClock(datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc))

    @task("sync.external", interval=300, registry=registry)
    async def sync_v1() -> None: ...

    async with QueueService(make_config(clock=clock), registry=registry) as service:
        (old,) = await service.initialize_schedules()
        registry.unregister("sync.external")

        @task("sync.external", interval=600, initial_delay=60, registry=registry)
        async def sync_v1() -> None: ...  # same function, new definition (a redeploy)

        (new,) = await service.initialize_schedules()
        assert new.id != old.id
        assert new.scheduled_at == clock.current + timedelta(seconds=60)
        cancelled = await service.get_task(old.id)
        assert cancelled is not None and cancelled.status is TaskStatus.CANCELLED


async def test_each_slot_runs_once_and_the_next_is_enqueued(
    registry: TaskRegistry, make_config: Callable[..., QueueConfig]
) -> None:
    runs: list[str] = []

    @task("tick", interval=3600, registry=registry)
    async def tick(_job_id: str = "") -> None:
        runs.append(_job_id)

    async with QueueService(make_config(), registry=registry) as service:
        now = service.clock.now()
        missed = await service.enqueue_slot(registry.get("tick"), now - timedelta(hours=5), now=now)  # before downtime
        await Worker(service).run_until_idle()
        assert runs == [missed.id]  # the missed slot ran once, not once per missed hour
        pending = (await service.list_tasks(status=TaskStatus.PENDING, task_name="tick")).records
        assert len(pending) == 1 and pending[0].scheduled_at > now  # the next slot is in the future
        again = await service.enqueue_slot(registry.get("tick"), now - timedelta(hours=5), now=now)
        assert again.id == missed.id and again.status is TaskStatus.COMPLETED  # a slot never runs twice


async def test_max_instances_skips_overlapping_runs(
    registry: TaskRegistry, make_config: Callable[..., QueueConfig]
) -> None:
    gate = asyncio.Event()
    started: list[Any] = []

    @task("exclusive", interval=3600, max_instances=1, registry=registry)
    async def exclusive() -> None:
        started.append(1)
        await gate.wait()

    async with QueueService(make_config(), registry=registry) as service:
        now = service.clock.now()
        first = await service.enqueue_slot(registry.get("exclusive"), now - timedelta(hours=2), now=now)
        second = await service.enqueue_slot(registry.get("exclusive"), now - timedelta(hours=1), now=now)
        worker = Worker(service)
        await worker.start()
        try:
            skipped = await service.wait_for(second.id, timeout=5)
        finally:
            gate.set()
            await worker.stop()
        assert skipped.status is TaskStatus.CANCELLED
        assert skipped.error is not None and skipped.error.type == "max_instances"
        assert (await service.wait_for(first.id, timeout=5)).status is TaskStatus.COMPLETED
        assert started == [1]

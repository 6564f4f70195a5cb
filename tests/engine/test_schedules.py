"""Schedules: one pending record per schedule, one run per slot, definition changes, missed slots, max_instances."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from litestar_queues import (
    EnqueueOutcome,
    QueueConfig,
    QueueService,
    TaskRecord,
    TaskRegistry,
    TaskStatus,
    Worker,
    task,
)
from litestar_queues.backends.memory import MemoryBackend
from litestar_queues.scheduler import next_slot

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
        # the first interval slot at least initial_delay ahead: 12:01 rounded up to a multiple of 600 s since the epoch
        assert new.scheduled_at == datetime(2026, 11, 22, 12, 10, tzinfo=timezone.utc)
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
        before_downtime = now - timedelta(hours=5)
        missed = await service.scheduler.enqueue_slot(registry.get("tick"), before_downtime, now=now)
        await Worker(service).run_until_idle()
        assert runs == [missed.id]  # the missed slot ran once, not once per missed hour
        pending = (await service.list_tasks(status=TaskStatus.PENDING, task_name="tick")).records
        assert len(pending) == 1 and pending[0].scheduled_at > now  # the next slot is in the future
        again = await service.scheduler.enqueue_slot(registry.get("tick"), before_downtime, now=now)
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
        first = await service.scheduler.enqueue_slot(registry.get("exclusive"), now - timedelta(hours=2), now=now)
        second = await service.scheduler.enqueue_slot(registry.get("exclusive"), now - timedelta(hours=1), now=now)
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


class SkewedClock:
    """The system clock, off by ``offset`` seconds: one node of several, whose clocks never agree exactly."""

    def __init__(self, offset: float) -> None:
        self.offset = timedelta(seconds=offset)

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset


async def test_interval_slots_do_not_depend_on_the_clock(registry: TaskRegistry) -> None:
    @task("every.ten.minutes", interval=600, registry=registry)
    async def every_ten_minutes() -> None: ...

    schedule = registry.get("every.ten.minutes").schedule
    assert schedule is not None
    base = datetime(2026, 11, 22, 12, 0, 0, tzinfo=timezone.utc)
    slots = {next_slot(schedule, base + timedelta(seconds=skew)) for skew in (0.001, 1.5, 59, 299.999, 599.9)}
    assert slots == {datetime(2026, 11, 22, 12, 10, tzinfo=timezone.utc)}
    assert next_slot(schedule, datetime(2026, 11, 22, 12, 10, tzinfo=timezone.utc)) == base + timedelta(minutes=20)


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
SCHEDULERS = 5


class TogetherBackend(MemoryBackend):
    """Holds the first ``count`` enqueues until all of them arrived: schedulers that start together each look for a
    pending run before any of them enqueued one."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.waiting = count
        self.all_arrived = asyncio.Event()

    async def enqueue(self, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
        if not self.all_arrived.is_set():
            self.waiting -= 1
            if self.waiting <= 0:
                self.all_arrived.set()
            await self.all_arrived.wait()
        return await super().enqueue(records)


INTERVAL = 0.25
SLOTS = 6


async def test_schedulers_starting_together_run_each_interval_slot_once(
    registry: TaskRegistry, make_config: Callable[..., QueueConfig]
) -> None:
    """Five processes (each with its own clock, off by up to 40 ms) start on one backend at the same moment."""
    runs: list[str] = []

    @task("heartbeat.ping", interval=INTERVAL, registry=registry)
    async def ping(_job_id: str = "") -> None:
        runs.append(_job_id)

    backend = TogetherBackend(SCHEDULERS)
    services = [
        QueueService(make_config(queue_backend=backend, clock=SkewedClock(number * 0.01)), registry=registry)
        for number in range(SCHEDULERS)
    ]
    for service in services:
        await service.open()
    await asyncio.gather(*(service.initialize_schedules() for service in services))
    workers = [Worker(service) for service in services]
    started = asyncio.get_running_loop().time()
    for worker in workers:
        await worker.start()
    try:
        await asyncio.sleep(INTERVAL * SLOTS)
    finally:
        for worker in workers:
            await worker.stop()
    window = asyncio.get_running_loop().time() - started
    records = [await services[0].get_task(record_id) for record_id in runs]
    slots = sorted(datetime.fromisoformat(record.metadata["schedule"]["slot"]) for record in records if record)
    assert len(slots) == len(runs) == len(set(slots)), f"a slot ran twice: {slots}"
    step = timedelta(seconds=INTERVAL)
    assert all((slot - EPOCH) % step == timedelta(0) for slot in slots), f"slots off the interval's grid: {slots}"
    # One chain of slots, not one per scheduler: at most one run per interval of the window (and the one due first).
    assert 1 <= len(runs) <= window / INTERVAL + 2, f"{len(runs)} runs in {window:.2f}s: {slots}"

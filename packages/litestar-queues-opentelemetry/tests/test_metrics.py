"""Metrics after a known workload: counters by queue and task, histograms, the queue gauges of a maintenance pass."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import REGISTRY, generate_latest

from litestar_queues import QueueConfig, QueueService, TaskRegistry, Worker, task
from litestar_queues.opentelemetry import DURATION_BUCKETS, OpenTelemetryInstrumentation

if TYPE_CHECKING:
    from conftest import Telemetry

pytestmark = pytest.mark.anyio


def define_tasks(registry: TaskRegistry) -> tuple[object, object]:
    @task("obs.ok", registry=registry)
    async def ok(n: int) -> int:
        return n

    @task("obs.flaky", registry=registry, queue="slow", retries=1, retry_backoff=0)
    async def flaky() -> None:
        raise ValueError("no")

    return ok, flaky


def by_labels(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


async def test_counters_and_histograms_after_a_known_workload(
    service: QueueService, registry: TaskRegistry, telemetry: Telemetry
) -> None:
    ok, flaky = define_tasks(registry)
    await service.enqueue_many([service.request(ok, n) for n in range(3)])  # type: ignore[arg-type]
    await service.enqueue(flaky)  # type: ignore[arg-type]
    await service.enqueue(ok.using(key="once"), 9)  # type: ignore[attr-defined]
    await service.enqueue(ok.using(key="once"), 9)  # type: ignore[attr-defined]  # deduplicated: not counted
    await Worker(service).run_until_idle()

    ok_labels, flaky_labels = by_labels(queue="default", task="obs.ok"), by_labels(queue="slow", task="obs.flaky")
    assert telemetry.points("litestar_queues.tasks.enqueued") == {ok_labels: 4, flaky_labels: 1}
    assert telemetry.points("litestar_queues.tasks.started") == {ok_labels: 4, flaky_labels: 2}
    assert telemetry.points("litestar_queues.tasks.completed") == {ok_labels: 4}
    assert telemetry.points("litestar_queues.tasks.retried") == {flaky_labels: 1}
    assert telemetry.points("litestar_queues.tasks.failed") == {flaky_labels: 1}
    assert telemetry.points("litestar_queues.tasks.cancelled") == {}
    runs = telemetry.points("litestar_queues.task.run.duration")
    assert {labels: point.count for labels, point in runs.items()} == {
        by_labels(queue="default", task="obs.ok", status="completed"): 4,
        by_labels(queue="slow", task="obs.flaky", status="retrying"): 1,
        by_labels(queue="slow", task="obs.flaky", status="failed"): 1,
    }
    assert all(point.sum > 0 and tuple(point.explicit_bounds) == DURATION_BUCKETS for point in runs.values())
    waits = telemetry.points("litestar_queues.task.wait.duration")
    assert {labels: point.count for labels, point in waits.items()} == {ok_labels: 4, flaky_labels: 2}


async def test_queue_gauges_come_from_the_maintenance_pass_and_expire(
    registry: TaskRegistry, telemetry: Telemetry, make_config: Callable[..., QueueConfig]
) -> None:
    ok, flaky = define_tasks(registry)
    config = make_config()
    config.worker = dataclasses.replace(config.worker, maintenance_interval=0.05)
    async with QueueService(config, registry=registry) as service:
        overdue = service.clock.now() - timedelta(seconds=30)
        due = await service.enqueue(ok.using(scheduled_at=overdue), 1)  # type: ignore[attr-defined]
        await service.enqueue(ok.using(delay=3600), 2)  # type: ignore[attr-defined]
        await service.enqueue(flaky.using(delay=3600))  # type: ignore[attr-defined]
        await service.pause_queue("mail")  # known to nobody but the pause
        worker = Worker(service, dataclasses.replace(config.worker, concurrency=1, queues=("slow",)))
        await worker.start()  # its first maintenance pass takes the snapshot; it serves "slow" only
        try:
            depth = telemetry.points("litestar_queues.queue.depth")
            age = telemetry.points("litestar_queues.queue.oldest_due.age")
            workers = telemetry.points("litestar_queues.workers")
            paused = telemetry.points("litestar_queues.queue.paused")
        finally:
            await worker.stop()
        assert depth[by_labels(queue="default", status="pending")] == 2
        assert depth[by_labels(queue="slow", status="pending")] == 1
        assert depth[by_labels(queue="default", status="completed")] == 0
        assert depth[by_labels(queue="mail", status="pending")] == 0
        assert len(depth) == 3 * 6  # every status of every queue the worker knows (served, named by a task, paused)
        assert 30 <= age[by_labels(queue="default")] < 60
        assert age[by_labels(queue="slow")] == 0  # nothing due
        assert workers == {by_labels(queue="default"): 0, by_labels(queue="slow"): 1, by_labels(queue="mail"): 0}
        assert paused == {by_labels(queue="default"): 0, by_labels(queue="slow"): 0, by_labels(queue="mail"): 1}
        assert due.record.scheduled_at < service.clock.now() - timedelta(seconds=29)
        for _ in range(100):  # no worker ticks now: the snapshot stops being reported after three passes' time
            if not telemetry.points("litestar_queues.queue.depth"):
                break
            await asyncio.sleep(0.02)
        assert telemetry.points("litestar_queues.queue.depth") == {}


async def test_a_prometheus_scrape_shows_the_counters_by_queue_and_task(registry: TaskRegistry) -> None:
    ok, _ = define_tasks(registry)
    provider = MeterProvider(metric_readers=[PrometheusMetricReader()])  # it serves prometheus_client's REGISTRY
    try:
        instrumentation = OpenTelemetryInstrumentation(meter_provider=provider, traces=False)
        async with QueueService(
            QueueConfig(queue_backend="memory", instrumentation=instrumentation), registry=registry
        ) as service:
            await service.enqueue_many([service.request(ok, n) for n in range(5)])  # type: ignore[arg-type]
            await Worker(service).run_until_idle()
        text = generate_latest(REGISTRY).decode()
    finally:
        provider.shutdown()  # takes the reader out of the REGISTRY again
    samples = {line.split("{")[0]: line.rsplit(" ", 1)[1] for line in text.splitlines() if 'task="obs.ok"' in line}
    assert samples["litestar_queues_tasks_enqueued_total"] == "5.0"
    assert samples["litestar_queues_tasks_completed_total"] == "5.0"
    assert samples["litestar_queues_task_run_duration_seconds_count"] == "5.0"

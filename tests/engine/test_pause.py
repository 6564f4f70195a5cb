"""Pausing a queue through the service: workers start none of its work, enqueues go on, a resume lets it run."""

from __future__ import annotations

import asyncio

import pytest

from litestar_queues import QueueService, TaskRegistry, TaskStatus, Worker, WorkerConfig, task
from litestar_queues.clock import utc_now
from litestar_queues.records import WorkerInfo
from litestar_queues.throughput import FINISHED_KEY, WINDOW_KEY, RecentCounts, finished_per_minute

pytestmark = pytest.mark.anyio


async def test_a_worker_runs_no_work_of_a_paused_queue_until_it_is_resumed(
    service: QueueService, registry: TaskRegistry
) -> None:
    ran: list[str] = []

    @task("mail.send", queue="mail", registry=registry)
    async def send(to: str) -> None:
        ran.append(to)

    @task("report.build", queue="reports", registry=registry)
    async def build(name: str) -> None:
        ran.append(name)

    assert await service.pause_queue("mail") is True
    assert await service.pause_queue("mail") is False
    assert list(await service.paused_queues()) == ["mail"]
    held = await service.enqueue(send, "ada@example.com")
    assert held.created and held.status is TaskStatus.PENDING  # enqueues still go in
    other = await service.enqueue(build, "q3")

    # run_until_idle ends with the paused backlog still waiting: it is no work for this worker.
    assert await Worker(service).run_until_idle(timeout=5) == 1
    assert ran == ["q3"] and (await service.get_task(other.id)).status is TaskStatus.COMPLETED  # type: ignore[union-attr]
    assert (await service.get_task(held.id)).status is TaskStatus.PENDING  # type: ignore[union-attr]

    assert await service.resume_queue("mail") is True
    assert await service.resume_queue("mail") is False
    assert await Worker(service).run_until_idle(timeout=5) == 1
    assert ran == ["q3", "ada@example.com"]


async def test_a_resume_wakes_a_waiting_worker_at_once(service: QueueService, registry: TaskRegistry) -> None:
    done = asyncio.Event()

    @task("mail.send", queue="mail", registry=registry)
    async def send() -> None:
        done.set()

    await service.pause_queue("mail")
    await service.enqueue(send)
    worker = Worker(service, WorkerConfig(poll_interval=30.0, queues=("mail",)))
    await worker.start()
    try:
        await asyncio.sleep(0.2)
        assert not done.is_set()
        await service.resume_queue("mail")
        # A poll would take 30 s: only the resume's wakeup can end the worker's wait this soon.
        await asyncio.wait_for(done.wait(), 5)
    finally:
        await worker.stop()


@pytest.mark.parametrize("queue", ["", None])
async def test_pausing_needs_a_queue_name(service: QueueService, queue: str | None) -> None:
    with pytest.raises(ValueError, match="queue name"):
        await service.pause_queue(queue)  # type: ignore[arg-type]


async def test_bulk_retry_and_cancel_stop_at_their_limit(service: QueueService, registry: TaskRegistry) -> None:
    @task("job", queue="bulk", registry=registry)
    async def job(n: int) -> None: ...

    outcomes = await service.enqueue_many([service.request(job, n) for n in range(5)])
    await service.enqueue(job.using(queue="elsewhere"), 99)
    assert await service.cancel_many(queue="bulk", limit=3) == 3
    newest_first = [outcome.id for outcome in reversed(outcomes)]
    statuses = [(await service.get_task(record_id)).status for record_id in newest_first]  # type: ignore[union-attr]
    assert statuses == [TaskStatus.CANCELLED] * 3 + [TaskStatus.PENDING] * 2
    assert await service.cancel_many(queue="bulk", status=TaskStatus.COMPLETED) == 0  # not a cancellable status
    assert await service.cancel_many(queue="bulk") == 2
    assert await service.retry_many(queue="bulk", limit=4) == 4
    assert (await service.get_statistics("bulk")).counts[TaskStatus.PENDING] == 4
    assert await service.retry_many(queue="bulk", status=TaskStatus.CANCELLED) == 1
    assert (await service.get_statistics("elsewhere")).counts[TaskStatus.PENDING] == 1


async def test_bulk_retry_skips_records_whose_key_is_taken(service: QueueService, registry: TaskRegistry) -> None:
    @task("job", registry=registry)
    async def job() -> None: ...

    first = await service.enqueue(job.using(key="k"))
    await service.cancel(first.id)
    await service.enqueue(job.using(key="k"))  # holds the key now
    other = await service.enqueue(job.using(key="other"))
    await service.cancel(other.id)
    assert await service.retry_many(status=TaskStatus.CANCELLED) == 1
    assert (await service.get_task(first.id)).status is TaskStatus.CANCELLED  # type: ignore[union-attr]


async def test_statistics_count_limit(service: QueueService, registry: TaskRegistry) -> None:
    @task("job", registry=registry)
    async def job(n: int) -> None: ...

    await service.enqueue_many([service.request(job, n) for n in range(4)])
    assert (await service.get_statistics(count_limit=2)).counts[TaskStatus.PENDING] == 3
    with pytest.raises(ValueError, match="count_limit"):
        await service.get_statistics(count_limit=-1)


async def test_workers_report_what_they_finished_per_queue(service: QueueService, registry: TaskRegistry) -> None:
    @task("fast", queue="fast", registry=registry)
    async def fast(n: int) -> None: ...

    @task("slow", queue="slow", registry=registry)
    async def slow() -> None:
        raise RuntimeError("fails, and counts as finished too")

    await service.enqueue_many([service.request(fast, n) for n in range(6)])
    await service.enqueue(slow)
    worker = Worker(service)
    await worker.run_until_idle(timeout=5)
    report = worker._info().metadata
    assert report[FINISHED_KEY] == {"fast": 6, "slow": 1}
    assert report[WINDOW_KEY] > 0
    rates = finished_per_minute([worker._info()])
    assert set(rates) == {"fast", "slow"} and rates["fast"] == pytest.approx(6 * rates["slow"])


def test_recent_counts_cover_about_the_last_window() -> None:
    counts = RecentCounts(60.0, now=0.0)
    counts.totals["a"] += 5
    assert counts.report(10.0) == {FINISHED_KEY: {"a": 5}, WINDOW_KEY: 10.0}
    counts.totals["a"] += 1
    counts.report(70.0)  # the sample at 10 s is now the newest one at least a minute old
    counts.totals["b"] += 2
    assert counts.report(75.0) == {FINISHED_KEY: {"a": 1, "b": 2}, WINDOW_KEY: 65.0}
    assert counts.report(200.0) == {FINISHED_KEY: {}, WINDOW_KEY: 125.0}


def test_finished_per_minute_adds_up_workers_over_their_own_windows() -> None:
    def worker(metadata: dict[str, object]) -> WorkerInfo:
        now = utc_now()
        return WorkerInfo(
            id="w",
            host="h",
            pid=1,
            queues=["a"],
            concurrency=1,
            started_at=now,
            last_heartbeat_at=now,
            metadata=metadata,
        )

    workers = [
        worker({FINISHED_KEY: {"a": 30}, WINDOW_KEY: 60.0}),
        worker({FINISHED_KEY: {"a": 10, "b": 4}, WINDOW_KEY: 30.0}),
        worker({}),  # reports nothing yet
        worker({FINISHED_KEY: {"a": 1}, WINDOW_KEY: 0}),  # no window: nothing to divide by
    ]
    assert finished_per_minute(workers) == {"a": 50.0, "b": 8.0}

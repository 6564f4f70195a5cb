"""Worker behaviour over the memory backend: retries, timeouts, cancellation, recovery, drain, caps, events."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, ClassVar

import pytest

from litestar_queues import (
    NonRetryableError,
    Outcome,
    QueueConfig,
    QueueService,
    TaskExecutionContext,
    TaskRegistry,
    TaskStatus,
    Worker,
    WorkerConfig,
    task,
)
from litestar_queues.backends.memory import MemoryBackend
from litestar_queues.events import InMemoryQueueEventSink, publish_task_log, publish_task_progress
from litestar_queues.runner import Interrupt

pytestmark = pytest.mark.anyio


async def _until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_seed_event_sequence_for_a_plain_task(
    service: QueueService, registry: TaskRegistry, sink: InMemoryQueueEventSink
) -> None:
    @task("plain", registry=registry)
    async def plain() -> None: ...

    await service.enqueue(plain)
    await Worker(service).run_until_idle()
    assert [event.type for event in sink.events] == ["task.started", "task.completed"]


async def test_progress_log_and_context(
    service: QueueService, registry: TaskRegistry, sink: InMemoryQueueEventSink
) -> None:
    seen: dict[str, object] = {}

    @task("videos.transcode", registry=registry)
    async def transcode(video_id: str, *, _job_id: str, _task_context: TaskExecutionContext) -> None:
        seen["job"], seen["attempt"] = _job_id, _task_context.attempt
        await publish_task_log("Transcode started", payload={"video_id": video_id})
        await publish_task_progress(current=1, total=4, message="Fetched source", channels=["extra:chan"])

    outcome = await service.enqueue(transcode, "v1")  # type: ignore[call-arg]
    worker = Worker(service)
    await worker.run_until_idle()
    assert seen == {"job": outcome.id, "attempt": 1}
    assert [e.type for e in sink.events] == ["task.started", "task.log", "task.progress", "task.completed"]
    assert [e.sequence for e in sink.events] == [1, 2, 3, 4]
    assert {e.worker_id for e in sink.events} == {worker.id}
    progress = sink.events[2]
    assert (progress.progress_current, progress.progress_total, progress.progress_percent) == (1, 4, 25.0)
    assert sink.published[2][1] == (f"litestar_queues:task:{outcome.id}:events", "extra:chan")


async def test_retries_then_success_and_attempt_numbers(
    service: QueueService, registry: TaskRegistry, sink: InMemoryQueueEventSink
) -> None:
    attempts: list[int] = []

    @task("flaky", retries=2, retry_backoff=0, registry=registry)
    async def flaky(_task_context: TaskExecutionContext) -> str:
        attempts.append(_task_context.attempt)
        if len(attempts) < 3:
            raise ConnectionError("upstream down")
        return "ok"

    outcome = await service.enqueue(flaky)  # type: ignore[call-arg]
    await Worker(service).run_until_idle()
    record = await service.wait_for(outcome.id, timeout=2)
    assert attempts == [1, 2, 3]
    assert record.status is TaskStatus.COMPLETED and record.attempts == 3
    assert [e.type for e in sink.events].count("task.retrying") == 2
    assert [e.attempt for e in sink.events if e.type == "task.started"] == [1, 2, 3]


async def test_retries_exhausted_and_non_retryable(service: QueueService, registry: TaskRegistry) -> None:
    @task("always", retries=1, retry_backoff=0, registry=registry)
    async def always() -> None:
        raise RuntimeError("nope")

    @task("fatal", retries=5, registry=registry)
    async def fatal() -> None:
        raise NonRetryableError("bad request, do not retry")

    first = await service.enqueue(always)
    second = await service.enqueue(fatal)
    await Worker(service).run_until_idle()
    exhausted = await service.wait_for(first.id, timeout=2)
    refused = await service.wait_for(second.id, timeout=2)
    assert (exhausted.status, exhausted.attempts) == (TaskStatus.FAILED, 2)
    assert (refused.status, refused.attempts) == (TaskStatus.FAILED, 1)
    assert refused.error is not None and refused.error.type == "litestar_queues.errors.NonRetryableError"


async def test_backoff_schedules_the_retry_in_the_future(service: QueueService, registry: TaskRegistry) -> None:
    @task("slow.retry", retries=3, retry_backoff=60, registry=registry)
    async def slow() -> None:
        raise RuntimeError("later")

    outcome = await service.enqueue(slow)
    before = service.clock.now()
    await Worker(service).run_until_idle()
    record = await service.get_task(outcome.id)
    assert record is not None and record.status is TaskStatus.PENDING
    delay = (record.scheduled_at - before).total_seconds()
    assert 30 <= delay <= 61  # between half and all of the first backoff step
    assert record.error is not None and record.error.message == "later"


async def test_async_timeout_stops_the_task(service: QueueService, registry: TaskRegistry) -> None:
    finished = asyncio.Event()

    @task("hangs", timeout=0.1, registry=registry)
    async def hangs() -> None:
        await asyncio.sleep(30)
        finished.set()

    outcome = await service.enqueue(hangs)
    await Worker(service).run_until_idle(timeout=5)
    record = await service.wait_for(outcome.id, timeout=1)
    assert record.status is TaskStatus.FAILED
    assert record.error is not None and record.error.type == "litestar_queues.errors.TaskTimeoutError"
    assert not finished.is_set()


async def test_sync_tasks_run_in_threads_and_time_out(service: QueueService, registry: TaskRegistry) -> None:
    release = threading.Event()
    threads: list[str] = []

    @task("sync.ok", registry=registry)
    def sync_ok(n: int) -> int:
        threads.append(threading.current_thread().name)
        return n * 2

    @task("sync.stuck", timeout=0.1, registry=registry)
    def sync_stuck() -> None:
        release.wait(5)

    ok = await service.enqueue(sync_ok, 21)
    stuck = await service.enqueue(sync_stuck)
    try:
        await Worker(service).run_until_idle(timeout=5)
    finally:
        release.set()
    assert await service.result(ok.id) == 42
    assert threads and threads[0] != threading.main_thread().name
    assert (await service.wait_for(stuck.id)).status is TaskStatus.FAILED


async def test_cancel_running_task_interrupts_it(service: QueueService, registry: TaskRegistry) -> None:
    started = asyncio.Event()

    @task("long", registry=registry)
    async def long() -> None:
        started.set()
        await asyncio.sleep(30)

    outcome = await service.enqueue(long)
    worker = Worker(service)
    await worker.start()
    try:
        await asyncio.wait_for(started.wait(), 5)
        requested = await service.cancel(outcome.id)
        assert requested.status is TaskStatus.RUNNING and requested.cancel_requested
        record = await service.wait_for(outcome.id, timeout=5)
    finally:
        await worker.stop()
    assert record.status is TaskStatus.CANCELLED


async def test_a_cancel_request_wins_over_a_retry(
    service: QueueService, registry: TaskRegistry, sink: InMemoryQueueEventSink
) -> None:
    cancel_sent = asyncio.Event()
    runs: list[int] = []

    @task("fails.after.cancel", retries=3, retry_backoff=0, registry=registry)
    async def fails_after_cancel(_task_context: TaskExecutionContext) -> None:
        runs.append(_task_context.attempt)
        await cancel_sent.wait()
        raise RuntimeError("failed before the next heartbeat noticed the cancellation")

    outcome = await service.enqueue(fails_after_cancel)  # type: ignore[call-arg]
    worker = Worker(service, WorkerConfig(heartbeat_interval=10, stale_threshold=30, poll_interval=0.01))
    await worker.start()
    try:
        await _until(lambda: runs)
        requested = await service.cancel(outcome.id)
        assert requested.status is TaskStatus.RUNNING and requested.cancel_requested
        cancel_sent.set()
        record = await service.wait_for(outcome.id, timeout=5)
    finally:
        await worker.stop()
    assert (record.status, record.attempts, runs) == (TaskStatus.CANCELLED, 1, [1])
    assert record.error is not None and "failed before the next heartbeat" in record.error.message
    types = [event.type for event in sink.events if event.task_id == outcome.id]
    assert types[-1] == "task.cancelled" and "task.retrying" not in types, types


async def test_drain_hands_unfinished_work_back_without_using_a_retry(
    service: QueueService, registry: TaskRegistry
) -> None:
    started = asyncio.Event()

    @task("drainable", registry=registry)
    async def drainable() -> None:
        started.set()
        await asyncio.sleep(30)

    outcome = await service.enqueue(drainable)
    worker = Worker(service)
    await worker.start()
    await asyncio.wait_for(started.wait(), 5)
    await worker.stop(drain_timeout=0.05)
    record = await service.get_task(outcome.id)
    assert record is not None
    assert (record.status, record.attempts, record.owner) == (TaskStatus.PENDING, 0, None)


async def test_drain_lets_short_work_finish(service: QueueService, registry: TaskRegistry) -> None:
    started = asyncio.Event()

    @task("short", registry=registry)
    async def short() -> str:
        started.set()
        await asyncio.sleep(0.1)
        return "finished"

    outcome = await service.enqueue(short)
    worker = Worker(service)
    await worker.start()
    await asyncio.wait_for(started.wait(), 5)
    await worker.stop(drain_timeout=5)
    assert await service.result(outcome.id, timeout=1) == "finished"


async def test_crashed_worker_work_comes_back_and_zombie_is_fenced(
    service: QueueService, registry: TaskRegistry
) -> None:
    runs: list[int] = []

    @task("recoverable", registry=registry)
    async def recoverable(_task_context: TaskExecutionContext) -> None:
        runs.append(_task_context.attempt)

    outcome = await service.enqueue(recoverable)  # type: ignore[call-arg]
    backend = service.backend
    now = service.clock.now()
    (zombie,) = await backend.claim(["default"], owner="dead-worker", limit=1, now=now, lease_seconds=0.01)
    await asyncio.sleep(0.02)  # let the dead worker's lease lapse in real time
    await Worker(service).run_until_idle()
    record = await service.wait_for(outcome.id, timeout=2)
    assert record.status is TaskStatus.COMPLETED and runs == [2]
    late = await backend.finish(zombie.lease, Outcome(status=TaskStatus.FAILED), now=service.clock.now())
    assert late is None  # the zombie cannot finish work someone else completed
    assert (await service.get_task(outcome.id)) == record


async def test_stale_opt_out_fails_instead(service: QueueService, registry: TaskRegistry) -> None:
    @task("no.requeue", requeue_stale=False, registry=registry)
    async def no_requeue() -> None: ...

    outcome = await service.enqueue(no_requeue)
    await service.backend.claim(["default"], owner="dead", limit=1, now=service.clock.now(), lease_seconds=0.01)
    await asyncio.sleep(0.02)
    worker = Worker(service)
    assert await worker.recover_stale(await service.backend.expired_leases(now=service.clock.now(), limit=10)) == 1
    record = await service.get_task(outcome.id)
    assert record is not None and record.status is TaskStatus.FAILED
    assert record.error is not None and record.error.type == "lease_expired"


async def test_queue_caps_and_registration(registry: TaskRegistry, make_config: Callable[..., QueueConfig]) -> None:
    active = {"now": 0, "peak": 0}
    gate = asyncio.Event()

    @task("capped", queue="heavy", registry=registry)
    async def capped() -> None:
        active["now"] += 1
        active["peak"] = max(active["peak"], active["now"])
        await gate.wait()
        active["now"] -= 1

    config = WorkerConfig(
        concurrency=8, queue_concurrency={"heavy": 2}, poll_interval=0.05, heartbeat_interval=0.05, stale_threshold=1
    )
    async with QueueService(make_config(worker=config), registry=registry) as service:
        await service.enqueue_many([service.request(capped) for _ in range(6)])
        worker = Worker(service)
        await worker.start()
        await _until(lambda: active["now"] == 2)
        workers = await service.list_workers()
        assert [w.id for w in workers] == [worker.id] and workers[0].queues == ["default", "heavy"]
        gate.set()
        await _until(lambda: worker.processed == 6)
        await worker.stop()
        assert await service.list_workers() == []
    assert active["peak"] == 2


async def test_a_queue_at_its_cap_is_left_out_of_the_wait_for_work(
    registry: TaskRegistry, make_config: Callable[..., QueueConfig]
) -> None:
    # Due work waiting in a queue at its cap must not end every wait at once: the worker would spin.
    class CountingBackend(MemoryBackend):
        waits: ClassVar[list[tuple[str, ...]]] = []

        async def wait_for_work(self, queues: Sequence[str], *, timeout: float) -> None:
            self.waits.append(tuple(queues))
            await super().wait_for_work(queues, timeout=timeout)

    started, gate = asyncio.Event(), asyncio.Event()

    @task("capped", queue="heavy", registry=registry)
    async def capped() -> None:
        started.set()
        await gate.wait()

    config = WorkerConfig(queues=("heavy", "light"), concurrency=4, queue_concurrency={"heavy": 1}, poll_interval=0.2)
    async with QueueService(make_config(queue_backend=CountingBackend(), worker=config), registry=registry) as service:
        await service.enqueue_many([service.request(capped) for _ in range(3)])
        worker = Worker(service)
        await worker.start()
        await started.wait()  # heavy is at its cap, with two due records waiting
        await asyncio.sleep(0.05)
        CountingBackend.waits.clear()
        await asyncio.sleep(0.5)
        assert 0 < len(CountingBackend.waits) <= 5, f"{len(CountingBackend.waits)} waits in 0.5 s (poll interval 0.2)"
        assert set(CountingBackend.waits) == {("light",)}
        gate.set()  # each freed slot ends the wait, so the remaining records run without waiting for a poll
        await _until(lambda: worker.processed == 3)
        await worker.stop()


async def test_throughput_smoke_many_tasks_all_complete(service: QueueService, registry: TaskRegistry) -> None:
    @task("noop", registry=registry)
    async def noop(n: int) -> int:
        return n

    await service.enqueue_many([service.request(noop, n) for n in range(2000)])
    worker = Worker(service, WorkerConfig(concurrency=50, batch_size=50, poll_interval=0.05))
    assert await worker.run_until_idle(timeout=20) == 2000
    assert (await service.get_statistics()).counts[TaskStatus.COMPLETED] == 2000


async def test_expired_records_never_run(service: QueueService, registry: TaskRegistry) -> None:
    ran: list[int] = []

    @task("perishable", registry=registry)
    async def perishable() -> None:
        ran.append(1)

    outcome = await service.enqueue(perishable.using(expires_in=0.01))
    time.sleep(0.02)
    await Worker(service).run_until_idle()
    record = await service.get_task(outcome.id)
    assert record is not None and record.status is TaskStatus.EXPIRED and ran == []
    assert record.finished_at is not None and record.finished_at - record.created_at >= timedelta(seconds=0.01)


async def test_worker_survives_backend_errors(
    service: QueueService, registry: TaskRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    @task("resilient", registry=registry)
    async def resilient() -> str:
        return "ok"

    backend = service.backend
    original = backend.claim
    failures = {"left": 3}

    async def flaky_claim(*args: object, **kwargs: object) -> object:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("server went away")
        return await original(*args, **kwargs)  # type: ignore[arg-type]

    backend.claim = flaky_claim  # type: ignore[method-assign]
    outcome = await service.enqueue(resilient)
    worker = Worker(service, WorkerConfig(poll_interval=0.01, heartbeat_interval=0.05, stale_threshold=1))
    await worker.run_until_idle(timeout=10)
    assert await service.result(outcome.id) == "ok"
    assert caplog.text.count("backend failed while claiming") == 1  # logged once, not per attempt
    assert "backend reachable again" in caplog.text


@pytest.mark.parametrize("reply_lost", [False, True], ids=["not applied", "applied, reply lost"])
async def test_an_outcome_the_backend_failed_to_take_is_held_and_written_again(
    service: QueueService, registry: TaskRegistry, caplog: pytest.LogCaptureFixture, *, reply_lost: bool
) -> None:
    runs: list[int] = []

    @task("held.outcome", registry=registry)
    async def held_outcome() -> str:
        runs.append(1)
        return "done"

    backend = service.backend
    original = backend.finish
    failures = {"left": 3}

    async def flaky_finish(*args: Any, **kwargs: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            if reply_lost:
                await original(*args, **kwargs)  # the write applies, and then the connection drops
            raise ConnectionError("server went away")
        return await original(*args, **kwargs)

    backend.finish = flaky_finish  # type: ignore[method-assign]
    outcome = await service.enqueue(held_outcome)
    await Worker(service, WorkerConfig(poll_interval=0.01, heartbeat_interval=0.05, stale_threshold=5)).run_until_idle()
    record = await service.wait_for(outcome.id, timeout=1)
    assert (record.status, record.result, runs) == (TaskStatus.COMPLETED, "done", [1])
    assert "holding it and trying again" in caplog.text
    assert "lease lost" not in caplog.text and "could not be finished" not in caplog.text


async def test_a_held_outcome_is_given_up_when_the_lease_expires(
    service: QueueService, registry: TaskRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    @task("never.written", registry=registry)
    async def never_written() -> None: ...

    async def broken_finish(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("server gone for good")

    service.backend.finish = broken_finish  # type: ignore[method-assign]
    outcome = await service.enqueue(never_written)
    config = WorkerConfig(poll_interval=0.01, heartbeat_interval=0.1, stale_threshold=0.6, maintenance_interval=60)
    worker = Worker(service, config)
    renew = service.backend.renew
    renewals: list[int] = []

    async def no_renewals(leases: Any, **kwargs: Any) -> Any:  # the server is gone for renewals too
        renewals.append(len(leases))
        raise ConnectionError("server gone for good")

    service.backend.renew = no_renewals  # type: ignore[method-assign]
    await worker.start()
    try:
        await _until(lambda: "could not be finished; it comes back through stale recovery" in caplog.text, timeout=5)
    finally:
        service.backend.renew = renew  # type: ignore[method-assign]
        await worker.stop()
    assert renewals and max(renewals) == 1  # the held attempt's lease was still being renewed
    record = await service.get_task(outcome.id)
    assert record is not None and record.status is TaskStatus.RUNNING  # stale recovery takes it from here


async def test_stop_ends_even_if_a_backend_call_swallows_its_cancellation(
    service: QueueService, registry: TaskRegistry
) -> None:
    """The SQLite pool once swallowed the cancellation of a heartbeat opening a connection: the worker never exited."""
    in_call = asyncio.Event()

    async def swallowing_renew(*args: Any, **kwargs: Any) -> Any:
        in_call.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(3600)  # the first cancel is swallowed; the call goes on
        return {}

    @task("sleeps", registry=registry)
    async def sleeps() -> None:
        await asyncio.sleep(30)

    service.backend.renew = swallowing_renew  # type: ignore[method-assign]
    await service.enqueue(sleeps)
    worker = Worker(service, WorkerConfig(heartbeat_interval=0.01, stale_threshold=30, poll_interval=0.01))
    await worker.start()
    await asyncio.wait_for(in_call.wait(), 5)
    stopping = asyncio.ensure_future(worker.stop(drain_timeout=0.05))
    done, _ = await asyncio.wait((stopping,), timeout=30)
    assert stopping in done, "worker.stop() hung on a loop that swallowed its cancellation"
    stopping.result()


async def test_a_worker_never_recovers_work_it_is_still_running(
    service: QueueService, registry: TaskRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """Renewals failed for longer than the lease (a backend restart): the worker's own maintenance, run as soon as
    the backend answers, must not hand its running attempts to the next claim."""
    runs: list[int] = []
    release = asyncio.Event()

    @task("outlives.its.lease", registry=registry)
    async def outlives_its_lease() -> None:
        runs.append(1)
        await release.wait()

    renew = service.backend.renew
    failing = {"on": True}

    async def renew_unless_down(*args: Any, **kwargs: Any) -> Any:
        if failing["on"]:
            raise ConnectionError("the backend restarts")
        return await renew(*args, **kwargs)

    service.backend.renew = renew_unless_down  # type: ignore[method-assign]
    outcome = await service.enqueue(outlives_its_lease)
    config = WorkerConfig(poll_interval=0.01, heartbeat_interval=0.05, stale_threshold=0.3, maintenance_interval=0.05)
    worker = Worker(service, config)
    await worker.start()
    try:
        await _until(lambda: runs)
        await asyncio.sleep(0.6)  # the lease expires; maintenance passes run meanwhile
        failing["on"] = False
        await asyncio.sleep(0.2)  # renewals again
        release.set()
        record = await service.wait_for(outcome.id, timeout=5)
    finally:
        await worker.stop()
    assert (record.status, runs) == (TaskStatus.COMPLETED, [1])
    assert "stopped renewing its lease" not in caplog.text


async def test_second_stop_cuts_a_long_drain_short(service: QueueService, registry: TaskRegistry) -> None:
    started = asyncio.Event()

    @task("stubborn", registry=registry)
    async def stubborn() -> None:
        started.set()
        await asyncio.sleep(60)

    outcome = await service.enqueue(stubborn)
    worker = Worker(service)
    await worker.start()
    await asyncio.wait_for(started.wait(), 5)
    first = asyncio.ensure_future(worker.stop(drain_timeout=60))  # first signal: drain for a minute
    await asyncio.sleep(0.05)
    assert not first.done()
    await asyncio.wait_for(worker.stop(drain_timeout=0), 5)  # second signal: hand back now
    await asyncio.wait_for(first, 1)
    record = await service.get_task(outcome.id)
    assert record is not None
    assert (record.status, record.attempts) == (TaskStatus.PENDING, 0)


async def test_a_renewal_racing_a_finish_is_not_a_lost_lease(
    service: QueueService, registry: TaskRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    release = asyncio.Event()

    @task("quick", registry=registry)
    async def quick() -> str:
        await release.wait()
        return "done"

    outcome = await service.enqueue(quick)
    original = service.backend.renew

    async def renew_while_the_attempt_finishes(*args: Any, **kwargs: Any) -> Any:
        release.set()
        await service.wait_for(outcome.id, timeout=5)  # the finish lands while this renewal is in flight
        return await original(*args, **kwargs)

    service.backend.renew = renew_while_the_attempt_finishes  # type: ignore[method-assign]
    await Worker(service).run_until_idle(timeout=10)
    assert await service.result(outcome.id) == "done"
    assert "lost the lease" not in caplog.text


async def test_a_slot_frees_while_the_outcome_is_written(service: QueueService, registry: TaskRegistry) -> None:
    """Claims go on while finishes are slow, up to three times ``concurrency`` attempts in flight; stop waits for
    writes."""
    writes = asyncio.Event()
    started: list[int] = []

    @task("quick", registry=registry)
    async def quick(n: int) -> None:
        started.append(n)

    await service.enqueue_many([service.request(quick, n) for n in range(10)])
    original = service.backend.finish

    async def slow_finish(*args: Any, **kwargs: Any) -> Any:
        await writes.wait()
        return await original(*args, **kwargs)

    service.backend.finish = slow_finish  # type: ignore[method-assign]
    worker = Worker(service, WorkerConfig(concurrency=2, batch_size=2, poll_interval=0.05))
    await worker.start()
    await _until(lambda: len(started) == 6)  # two slots, six attempts: four ran while earlier outcomes were pending
    assert worker.running == 0
    assert (await service.get_statistics()).counts[TaskStatus.RUNNING] == 6
    stopping = asyncio.ensure_future(worker.stop(drain_timeout=5))
    await asyncio.sleep(0.1)
    assert not stopping.done()  # the outcomes are still being written
    writes.set()
    await stopping
    assert len(started) == 6
    stats = await service.get_statistics()
    assert (stats.counts[TaskStatus.COMPLETED], stats.counts[TaskStatus.PENDING]) == (6, 4)


async def test_a_finished_attempt_leaves_nothing_for_the_cycle_collector(
    service: QueueService, registry: TaskRegistry
) -> None:
    """Reference counting frees each attempt as it ends: nothing of it waits, in a cycle, for the collector."""

    @task("freed", registry=registry)
    async def freed(n: int) -> int:
        return n

    await service.enqueue_many([service.request(freed, n) for n in range(50)])
    gc.collect()
    gc.disable()
    try:
        worker = Worker(service, WorkerConfig(concurrency=5, batch_size=5, poll_interval=0.05))
        assert await worker.run_until_idle() == 50
        left = [thing for thing in gc.get_objects() if isinstance(thing, Interrupt)]
    finally:
        gc.enable()
    assert left == []


@pytest.mark.parametrize(
    ("concurrency", "batch_size", "split", "claim_size", "ahead"),
    [(50, 50, True, 25, True), (50, 50, False, 50, False), (50, 25, False, 25, True), (10, 10, True, 10, False)],
)
async def test_with_a_backlog_the_next_claim_goes_out_while_the_batch_starts(
    service: QueueService,
    registry: TaskRegistry,
    *,
    concurrency: int,
    batch_size: int,
    split: bool,
    claim_size: int,
    ahead: bool,
) -> None:
    """A claim that leaves free slots is followed by the next one before its batch starts; with ``split_claims``
    a claim of 20 or more that would fill them takes half. Never more than ``concurrency`` run."""
    started: list[int] = []
    running = peak = 0

    @task("backlog", registry=registry)
    async def backlog(n: int) -> None:
        nonlocal running, peak
        started.append(n)
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1

    await service.enqueue_many([service.request(backlog, n) for n in range(200)])
    original = service.backend.claim
    claimed = 0
    calls: list[tuple[int, int]] = []  # (limit, records claimed but not started yet)

    async def claim(*args: Any, **kwargs: Any) -> Any:
        nonlocal claimed
        calls.append((kwargs["limit"], claimed - len(started)))
        records = await original(*args, **kwargs)
        claimed += len(records)
        return records

    service.backend.claim = claim  # type: ignore[method-assign]
    service.backend.split_claims = split
    worker = Worker(service, WorkerConfig(concurrency=concurrency, batch_size=batch_size, poll_interval=0.05))
    assert await worker.run_until_idle() == 200
    assert sorted(started) == list(range(200))
    assert peak <= concurrency
    assert max(limit for limit, _ in calls) == claim_size
    held = [count for _, count in calls if count]
    assert bool(held) is ahead
    assert all(count == claim_size for count in held)


async def test_stopping_while_a_claim_is_ahead_leaves_nothing_running(
    service: QueueService, registry: TaskRegistry
) -> None:
    """The records of a claim sent ahead are run (or handed back) by the drain, never left holding a lease."""
    ran: list[int] = []

    @task("ahead", registry=registry)
    async def ahead(n: int) -> None:
        ran.append(n)

    await service.enqueue_many([service.request(ahead, n) for n in range(100)])
    original = service.backend.claim
    second_sent = asyncio.Event()
    release = asyncio.Event()
    calls = 0

    async def claim(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # the claim sent ahead of the first batch
            second_sent.set()
            await release.wait()
        return await original(*args, **kwargs)

    service.backend.claim = claim  # type: ignore[method-assign]
    worker = Worker(service, WorkerConfig(concurrency=50, batch_size=25, poll_interval=0.05))
    await worker.start()
    await asyncio.wait_for(second_sent.wait(), 5)
    stopping = asyncio.ensure_future(worker.stop(drain_timeout=5))
    await asyncio.sleep(0.05)
    assert not stopping.done()  # the claim ahead is still out
    release.set()
    await stopping
    stats = await service.get_statistics()
    assert stats.counts[TaskStatus.RUNNING] == 0
    assert stats.counts[TaskStatus.COMPLETED] == len(ran) == 50
    assert stats.counts[TaskStatus.PENDING] == 50


async def test_stopping_lets_a_heartbeat_in_flight_finish(
    registry: TaskRegistry, make_config: Callable[..., QueueConfig]
) -> None:
    """A backend call cancelled halfway may leave a pooled connection checked out (SQLite: its write lock held);
    stopping cancels a periodic loop only while it sleeps."""
    in_flight, release = asyncio.Event(), asyncio.Event()
    ended: list[str] = []

    class SlowHeartbeats(MemoryBackend):
        async def register_worker(self, info: Any, *, ttl_seconds: float) -> None:
            if not in_flight.is_set() and ended == ["first"]:
                in_flight.set()
                try:
                    await release.wait()
                except asyncio.CancelledError:
                    ended.append("cancelled")
                    raise
                ended.append("finished")
            elif not ended:
                ended.append("first")  # the registration at start
            await super().register_worker(info, ttl_seconds=ttl_seconds)

    config = WorkerConfig(heartbeat_interval=0.01, poll_interval=0.05)
    async with QueueService(make_config(queue_backend=SlowHeartbeats(), worker=config), registry=registry) as service:
        worker = Worker(service)
        await worker.start()
        await asyncio.wait_for(in_flight.wait(), 5)
        stopping = asyncio.ensure_future(worker.stop())
        await asyncio.sleep(0.05)
        assert not stopping.done(), "the stop waits for the heartbeat in flight"
        release.set()
        await asyncio.wait_for(stopping, 5)
    assert ended == ["first", "finished"]


async def _idle_worker(service: QueueService) -> tuple[Worker, asyncio.Task[Any]]:
    """A started worker whose claim loop waits for work (a poll interval far longer than any test)."""
    worker = Worker(service, WorkerConfig(poll_interval=3600))
    await worker.start()
    await _until(lambda: worker._idle is not None)
    return worker, worker._loops[0]


async def test_stopping_an_idle_worker_ends_its_wait_for_work_and_the_claim_loop_by_itself(
    service: QueueService,
) -> None:
    """The idle wait runs inside the claim loop's own task: a stop cancels that wait and takes the cancel back, so
    the loop ends on its own (it is not left for the stop's final cancel of every loop)."""
    worker, claim_loop = await _idle_worker(service)
    await asyncio.wait_for(worker.stop(), 30)
    assert claim_loop.done()
    assert not claim_loop.cancelled()


async def test_a_cancel_of_an_idle_claim_loop_from_elsewhere_is_not_swallowed(service: QueueService) -> None:
    worker, claim_loop = await _idle_worker(service)
    claim_loop.cancel()
    await asyncio.wait((claim_loop,), timeout=30)
    assert claim_loop.cancelled()
    await worker.stop()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.uncancel counts cancels from 3.11")
async def test_a_cancel_from_elsewhere_racing_a_stop_is_not_swallowed(service: QueueService) -> None:
    worker, claim_loop = await _idle_worker(service)
    claim_loop.cancel()
    worker.request_stop()  # a second cancel of the same wait: the stop takes back only its own
    await asyncio.wait((claim_loop,), timeout=30)
    assert claim_loop.cancelled()
    await worker.stop()
